"""The reference portal's population: deterministic records consistent with their NIR."""

from __future__ import annotations

import random

from rempart.sim import Population


def test_same_seed_gives_same_people_and_other_seed_other_people() -> None:
    a, b, c = Population(1, 5000), Population(1, 5000), Population(2, 5000)
    assert [a.nir(i) for i in range(100)] == [b.nir(i) for i in range(100)]
    assert a[42] == b[42]
    assert [a.nir(i) for i in range(100)] != [c.nir(i) for i in range(100)]


def test_record_matches_its_nir_sex_and_birth_month() -> None:
    pop = Population(9, 3000)
    for i in range(0, 3000, 37):
        person = pop[i]
        assert person.nir == pop.nir(i)
        assert person.sexe == ("M" if person.nir[0] == "1" else "F")
        assert person.date_naissance.year % 100 == int(person.nir[1:3])
        assert person.date_naissance.month == int(person.nir[3:5])
        assert person.nom and person.prenom and person.organisme
        assert "regime_obligatoire" in person.garanties
        assert set(person.to_dict()) == {
            "nir",
            "nom",
            "prenom",
            "sexe",
            "date_naissance",
            "organisme",
            "garanties",
        }


def test_get_finds_members_and_unknown_nir_is_not_a_member() -> None:
    pop = Population(4, 2000)
    assert pop.get(pop.nir(123)) == pop[123]
    unknown = pop.unknown_nir(random.Random(1))
    assert unknown not in pop
    assert pop.get(unknown) is None
