"""The synthetic insured population: who the portal's rights checks are about.

``Population(seed, size)`` is deterministic per seed. NIRs are drawn eagerly (they are what the
traffic refers to); the rest of a beneficiary's record (name, birth date, insurer, guarantees) is
derived on demand from the seed and the index, so a population of millions stays cheap. The
reference portal serves rights checks from it: ``population.get(nir)`` is the record or ``None``
(404). The population is split into *areas* (a town and its surroundings) of ``AREA_SIZE``
people; practitioners draw their patients from their own area, so patients are shared between
the pharmacies, doctors and labs of a town, as in life.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from rempart.errors import ConfigError
from rempart.sim.nir import make_nir, random_department, random_nir_body

AREA_SIZE = 6000

SURNAMES: tuple[str, ...] = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Muller", "Lefevre", "Faure", "Andre", "Mercier", "Blanc", "Guerin", "Boyer", "Garnier",
    "Chevalier", "Francois", "Legrand", "Gauthier", "Garcia", "Perrin", "Robin", "Clement",
    "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson", "Marchand", "Duval",
    "Denis", "Dumont", "Marie", "Lemaire", "Noel", "Meyer", "Dufour", "Meunier", "Brun",
    "Blanchard", "Giraud", "Joly", "Riviere", "Lucas", "Brunet", "Gaillard", "Barbier", "Arnaud",
    "Martinez", "Gerard", "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin", "Vidal",
    "Caron", "Picard", "Roger", "Fabre", "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix",
    "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoit", "Rey", "Leclerc", "Payet", "Rolland",
    "Leclercq", "Guillaume", "Lecomte", "Lopez", "Jean", "Dupuy", "Guillot", "Hubert", "Berger",
    "Carpentier", "Sanchez", "Dupuis", "Moulin", "Louis", "Deschamps", "Huet", "Vasseur",
    "Perez", "Boucher", "Fleury", "Royer", "Klein", "Jacquet", "Adam", "Paris", "Poirier",
    "Marty", "Aubry", "Guyot", "Carre", "Charles", "Renault", "Charpentier", "Menard", "Maillard",
    "Baron", "Bertin", "Bailly", "Herve", "Schneider", "Fernandez", "Le Gall", "Collet", "Leger",
    "Bouvier", "Julien", "Prevost", "Millet", "Perrot", "Daniel", "Le Roux", "Cousin", "Germain",
    "Breton", "Besson", "Langlois", "Remy", "Le Goff", "Pelletier", "Leveque", "Perrier",
)  # fmt: skip
FIRST_NAMES_F: tuple[str, ...] = (
    "Marie", "Jeanne", "Francoise", "Monique", "Catherine", "Nathalie", "Isabelle", "Sylvie",
    "Anne", "Martine", "Christine", "Valerie", "Sandrine", "Nicole", "Stephanie", "Sophie",
    "Celine", "Julie", "Aurelie", "Camille", "Laura", "Emma", "Lea", "Chloe", "Manon", "Ines",
    "Jade", "Louise", "Alice", "Lina", "Mila", "Rose", "Anna", "Zoe", "Sarah", "Pauline",
    "Elodie", "Helene", "Brigitte", "Josiane", "Chantal", "Danielle", "Yvette", "Odette",
)  # fmt: skip
FIRST_NAMES_M: tuple[str, ...] = (
    "Jean", "Pierre", "Michel", "Andre", "Philippe", "Alain", "Bernard", "Jacques", "Daniel",
    "Patrick", "Nicolas", "Christophe", "Christian", "Eric", "Frederic", "Laurent", "Stephane",
    "David", "Julien", "Sebastien", "Thomas", "Nicolas", "Kevin", "Maxime", "Lucas", "Hugo",
    "Louis", "Gabriel", "Arthur", "Jules", "Adam", "Raphael", "Leo", "Paul", "Nathan", "Ethan",
    "Mohamed", "Antoine", "Olivier", "Guy", "Marcel", "Rene", "Roger", "Gerard", "Claude",
)  # fmt: skip
#: Complementary insurers (organismes complémentaires) with a rough market weight.
INSURERS: tuple[tuple[str, int], ...] = (
    ("MGEN", 9), ("Harmonie Mutuelle", 12), ("Malakoff Humanis", 8), ("AG2R La Mondiale", 7),
    ("Groupama Gan Vie", 5), ("AXA France Vie", 6), ("Allianz Vie", 3), ("MACIF Mutualite", 4),
    ("Apicil Prevoyance", 3), ("Mutuelle Generale", 4), ("Klesia Prevoyance", 3),
    ("Swiss Life Prevoyance", 2), ("Generali Vie", 3), ("Mutuelle Bleue", 1), ("Alan", 2),
    ("Complementaire sante solidaire", 8), ("Sans complementaire", 4),
)  # fmt: skip
_INSURER_NAMES = tuple(name for name, _ in INSURERS)
_INSURER_CUM = tuple(sum(w for _, w in INSURERS[: i + 1]) for i in range(len(INSURERS)))
_GUARANTEE_LEVELS = ("100%", "125%", "150%", "200%", "300%")
_SPLIT = 1_000_003


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """One insured person as the portal's rights check discloses it."""

    nir: str
    nom: str
    prenom: str
    sexe: str  # "M" or "F"
    date_naissance: date
    organisme: str
    garanties: dict[str, str] = field(default_factory=dict)
    #: Area (town) the person lives in; practitioners of that area serve them.
    area: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "nir": self.nir,
            "nom": self.nom,
            "prenom": self.prenom,
            "sexe": self.sexe,
            "date_naissance": self.date_naissance.isoformat(),
            "organisme": self.organisme,
            "garanties": dict(self.garanties),
        }


def _birth_year(rng: random.Random) -> int:
    # Rough French age pyramid; the elderly see pharmacists and nurses more, as in life.
    r = rng.random()
    u = rng.random()
    if r < 0.18:
        return 2008 + int(u * 18)
    if r < 0.50:
        return 1976 + int(u * 32)
    if r < 0.80:
        return 1951 + int(u * 25)
    return 1926 + int(u * 25)


class Population:
    """Deterministic synthetic beneficiaries: ``nir(i)``, ``[i]``, ``get(nir)``, ``in``."""

    def __init__(self, seed: int, size: int = 50_000) -> None:
        if size < 1:
            raise ConfigError("population size must be positive", where="population.size")
        self.seed = seed
        self.size = size
        rng = random.Random(seed * _SPLIT + 17)
        n_areas = (size + AREA_SIZE - 1) // AREA_SIZE
        area_dept = [random_department(rng) for _ in range(n_areas)]
        nirs: list[str] = []
        seen: set[str] = set()
        for i in range(size):
            home = area_dept[i // AREA_SIZE]
            while True:
                body = random_nir_body(
                    rng,
                    year=_birth_year(rng),
                    department=home if rng.random() < 0.55 else None,
                )
                nir = make_nir(body)
                if nir not in seen:
                    break
            seen.add(nir)
            nirs.append(nir)
        self._nirs = nirs
        self._index: dict[str, int] = {n: i for i, n in enumerate(nirs)}

    def __len__(self) -> int:
        return self.size

    def __contains__(self, nir: object) -> bool:
        return nir in self._index

    @property
    def n_areas(self) -> int:
        return (self.size + AREA_SIZE - 1) // AREA_SIZE

    def area_range(self, area: int) -> tuple[int, int]:
        """Index range ``[lo, hi)`` of the people living in ``area``."""
        lo = area * AREA_SIZE
        return lo, min(lo + AREA_SIZE, self.size)

    @property
    def nirs(self) -> list[str]:
        """Every NIR, by index (do not modify)."""
        return self._nirs

    def nir(self, index: int) -> str:
        return self._nirs[index]

    def index_of(self, nir: str) -> int | None:
        return self._index.get(nir)

    def get(self, nir: str) -> Beneficiary | None:
        """The record behind ``nir``, or ``None`` when nobody has it (the portal's 404)."""
        i = self._index.get(nir)
        return None if i is None else self[i]

    def __getitem__(self, index: int) -> Beneficiary:
        nir = self._nirs[index]
        rng = random.Random((self.seed * _SPLIT + index) * 7 + 3)
        sex = "M" if nir[0] == "1" else "F"
        yy, mm = int(nir[1:3]), int(nir[3:5])
        year = 2000 + yy if 2000 + yy <= 2025 else 1900 + yy
        born = date(year, mm, rng.randint(1, 28))
        names = FIRST_NAMES_M if sex == "M" else FIRST_NAMES_F
        organisme = rng.choices(_INSURER_NAMES, cum_weights=_INSURER_CUM)[0]
        if organisme == "Sans complementaire":
            garanties = {"regime_obligatoire": "100%"}
        elif organisme == "Complementaire sante solidaire":
            garanties = {"regime_obligatoire": "100%", "css": "100%", "tiers_payant": "integral"}
        else:
            garanties = {
                "regime_obligatoire": "100%",
                "pharmacie": rng.choice(("100%", "100%", "ticket moderateur")),
                "optique": rng.choice(_GUARANTEE_LEVELS),
                "dentaire": rng.choice(_GUARANTEE_LEVELS),
                "hospitalisation": rng.choice(_GUARANTEE_LEVELS),
                "tiers_payant": "integral" if rng.random() < 0.8 else "part obligatoire",
            }
        return Beneficiary(
            nir=nir,
            nom=rng.choice(SURNAMES).upper(),
            prenom=rng.choice(names),
            sexe=sex,
            date_naissance=born,
            organisme=organisme,
            garanties=garanties,
            area=index // AREA_SIZE,
        )

    def unknown_nir(self, rng: random.Random) -> str:
        """A valid NIR that nobody in the population has (an enumerating attacker's 404)."""
        while True:
            nir = make_nir(random_nir_body(rng))
            if nir not in self._index:
                return nir
