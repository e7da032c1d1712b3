"""Breach documents as blocks (title, headings, paragraphs, lists, key-value rows) rendered to
Markdown here and to PDF by :mod:`rempart.cases.pdf`: the Art. 33 draft, the Art. 34 letter to
data subjects, and the Art. 33(5) internal register of breaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rempart.cases.art33 import STATUS_FR, fr_datetime, fr_int
from rempart.cases.settings import CasesSettings


@dataclass(frozen=True, slots=True)
class Block:
    kind: str  # title | h2 | p | ul | kv
    content: Any


def _v(value: Any) -> str:
    if value is None or value == "":
        return "non renseigné"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return fr_int(value)
    return str(value)


def art33_blocks(doc: dict[str, Any]) -> list[Block]:
    ch, pc, dn, dpo = doc["chronologie"], doc["personnes_concernees"], doc["donnees"], doc["dpo"]
    note = doc["notification"]
    rt = doc["responsable_de_traitement"]
    blocks = [
        Block("title", doc["document"]),
        Block(
            "p",
            f"Incident n° {doc['incident']['id']} : {doc['incident']['titre']} "
            f"({doc['incident']['statut']}). Projet généré le {doc['genere_le']} par "
            f"{doc['genere_par']}. À relire et valider avant dépôt sur le téléservice "
            "de la CNIL.",
        ),
        Block("h2", "1. Type de notification (article 33, paragraphe 4)"),
        Block(
            "kv",
            [
                (
                    "Type",
                    "notification initiale"
                    if note["type"] == "initiale"
                    else "notification complémentaire",
                ),
                ("Référence de la notification initiale", _v(note["reference_initiale"])),
                ("Notification par étapes", _v(note["par_etapes"])),
            ],
        ),
        Block("p", note["commentaire"]),
        Block("h2", "2. Responsable de traitement"),
        Block(
            "kv",
            [("Nom", _v(rt["nom"])), ("Adresse", _v(rt["adresse"])), ("SIREN", _v(rt["siren"]))],
        ),
        Block("h2", "3. Délégué à la protection des données (article 33, paragraphe 3, b)"),
        Block(
            "kv",
            [
                ("Nom", _v(dpo["nom"])),
                ("Courriel", _v(dpo["email"])),
                ("Téléphone", _v(dpo["telephone"])),
                ("Adresse", _v(dpo["adresse"])),
            ],
        ),
        Block("h2", "4. Chronologie et délai de notification (article 33, paragraphe 1)"),
        Block(
            "kv",
            [
                ("Début de la violation", ch["debut_violation_fr"]),
                ("Fin de la violation", ch["fin_violation_fr"]),
                ("Première alerte de détection", ch["premiere_alerte_fr"]),
                ("Prise de connaissance", ch["prise_de_connaissance_fr"]),
                ("Confinement", ch["confinement_fr"]),
                (f"Échéance de notification ({ch['delai_heures']:g} h)", ch["echeance_72h_fr"]),
                ("Notification", ch["notification_fr"]),
                (
                    "Notification hors délai",
                    _v(ch["en_retard"]) + (f" (retard de {ch['retard']})" if ch["retard"] else ""),
                ),
                (
                    "Motifs du retard",
                    _v(ch["motifs_du_retard"]) if ch["en_retard"] else "sans objet",
                ),
            ],
        ),
    ]
    for w in ch["fenetres_de_compromission"]:
        blocks.append(
            Block(
                "p", f"Compte {w['compte']} : du {w['debut_fr']} au {w['fin_fr']} ({w['origine']})."
            )
        )
        blocks.append(Block("ul", w["raisonnement"]))
    blocks += [
        Block("h2", "5. Nature de la violation (article 33, paragraphe 3, a)"),
        Block(
            "kv",
            [
                ("Type de violation", ", ".join(doc["nature"]["type_de_violation"])),
                ("Origine", doc["nature"]["origine"]),
                ("Comptes utilisés", ", ".join(doc["nature"]["comptes_concernes"]) or "aucun"),
                (
                    "Adresses IP de l'attaquant",
                    ", ".join(doc["nature"]["adresses_ip"]) or "non déterminées",
                ),
            ],
        ),
        Block("p", doc["nature"]["description"]),
        Block("h2", "6. Personnes concernées (article 33, paragraphe 3, a)"),
        Block(
            "kv",
            [
                ("Catégories de personnes", ", ".join(pc["categories"])),
                (
                    "Nombre de personnes concernées",
                    _v(pc["nombre"])
                    + (" (nombre exact)" if pc["nombre_est_exact"] else " (approximatif)"),
                ),
                ("Périmètre", pc["attribution"]),
            ]
            + (
                [("Exclues (déjà servies avant la fenêtre)", _v(pc["exclues_car_deja_servies"]))]
                if pc["exclues_car_deja_servies"] is not None
                else []
            ),
        ),
        Block("h2", "7. Données concernées (article 33, paragraphe 3, a)"),
        Block(
            "kv",
            [
                (
                    c["libelle"],
                    f"{fr_int(c['personnes'])} personnes, "
                    f"{fr_int(c['enregistrements'])} enregistrements",
                )
                for c in dn["categories"]
            ]
            + [
                ("Nombre d'enregistrements concernés", _v(dn["nombre_enregistrements"])),
                ("Données particulières", _v(dn["donnees_sensibles"])),
            ],
        ),
        Block("h2", "8. Conséquences probables (article 33, paragraphe 3, c)"),
        Block("ul", list(doc["consequences_probables"])),
        Block("h2", "9. Mesures prises et envisagées (article 33, paragraphe 3, d)"),
        Block("p", "Mesures prises :"),
        Block("ul", list(doc["mesures"]["prises"])),
        Block("p", "Mesures envisagées :"),
        Block("ul", list(doc["mesures"]["envisagees"])),
        Block("p", "Mesures pour atténuer les éventuelles conséquences négatives :"),
        Block("ul", list(doc["mesures"]["attenuation"])),
        Block("h2", "10. Information des personnes concernées (article 34)"),
        Block(
            "kv",
            [
                (
                    "Risque élevé pour les droits et libertés",
                    _v(doc["information_des_personnes"]["risque_eleve"]),
                ),
                ("Décision", doc["information_des_personnes"]["decision"]),
                ("Personnes à informer", _v(doc["information_des_personnes"]["nombre"])),
            ],
        ),
    ]
    return blocks


def to_markdown(blocks: Sequence[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if b.kind == "title":
            lines += [f"# {b.content}", ""]
        elif b.kind == "h2":
            lines += [f"## {b.content}", ""]
        elif b.kind == "p":
            lines += [str(b.content), ""]
        elif b.kind == "ul":
            lines += [f"- {item}" for item in b.content] + [""]
        elif b.kind == "kv":
            lines += ["| Rubrique | Valeur |", "|---|---|"]
            lines += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in b.content] + [""]
    return "\n".join(lines).rstrip() + "\n"


# -- Art. 34: letter to the data subjects ---------------------------------------------------


def art34_letter(doc: dict[str, Any], settings: CasesSettings) -> str:
    """Plain-language letter (French, Markdown) with ``{{ civilite }}``-style placeholders."""
    cats = [c["libelle"].split(" (")[0].lower() for c in doc["donnees"]["categories"]]
    ch = doc["chronologie"]
    dpo = doc["dpo"]
    what = ", ".join(cats) if cats else "certaines de vos données"
    return f"""# Information sur une violation de vos données personnelles

{settings.controller}

{{{{ civilite }}}} {{{{ nom }}}},

Nous vous informons qu'un incident de sécurité a touché vos données personnelles.

**Ce qui s'est passé.** Entre le {ch["debut_violation_fr"]} et le {ch["fin_violation_fr"]}, une
personne non autorisée a utilisé le compte d'un professionnel de santé sur notre portail de
tiers payant, avec son identifiant et son mot de passe, et a consulté des dossiers de
bénéficiaires. Votre dossier fait partie de ceux qui ont été consultés. Nous l'avons vérifié
dans nos journaux, dossier par dossier : ce courrier n'est envoyé qu'aux personnes dont le
dossier a réellement été affiché.

**Les données concernées.** {what[0].upper() + what[1:]}. Aucune donnée bancaire, aucun mot de
passe et aucune information sur vos soins ne figurent dans ces pages, sauf mention contraire
ci-dessus.

**Les risques pour vous.** Ces informations peuvent servir à vous contacter en se faisant
passer pour l'assurance maladie, votre mutuelle ou un professionnel de santé (courriel, SMS,
appel), afin d'obtenir d'autres informations ou de l'argent, ou à usurper votre identité.

**Ce que nous avons fait.** Le compte utilisé a été bloqué, l'accès de l'attaquant a été coupé
et la CNIL a été informée. Nous renforçons l'authentification des professionnels de santé.

**Ce que nous vous conseillons.**

- Méfiez-vous des messages ou appels inattendus qui citent votre numéro de sécurité sociale
  ou votre mutuelle : ils ne prouvent pas que l'interlocuteur est légitime.
- Ne communiquez jamais vos mots de passe, codes reçus par SMS ou coordonnées bancaires.
- Vérifiez régulièrement vos remboursements sur votre compte ameli et auprès de votre mutuelle.
- En cas de doute, signalez le message sur cybermalveillance.gouv.fr ou au 33700 (SMS).

**Pour toute question**, notre délégué à la protection des données est joignable :
{dpo["nom"]}, {dpo["email"]}{", " + dpo["telephone"] if dpo["telephone"] else ""}.
Vous pouvez aussi adresser une réclamation à la CNIL (www.cnil.fr).

Référence de votre dossier : {{{{ reference }}}}

Nous vous prions de nous excuser pour ce désagrément.

{settings.controller}
"""


# -- Art. 33(5): internal register of breaches ----------------------------------------------


def register_blocks(entries: Sequence[dict[str, Any]]) -> list[Block]:
    """One section per incident, notified or not: facts, effects, remedial action."""
    blocks = [
        Block("title", "Registre interne des violations de données (article 33, paragraphe 5)"),
        Block("p", f"{len(entries)} incident(s) consigné(s), notifiés ou non."),
    ]
    for e in entries:
        blocks.append(Block("h2", f"Incident n° {e['id']} : {e['titre']}"))
        blocks.append(
            Block(
                "kv",
                [
                    ("Statut", STATUS_FR.get(e["statut"], e["statut"])),
                    ("Faits", e["faits"]),
                    ("Période", f"du {fr_datetime(e['debut'])} au {fr_datetime(e['fin'])}"),
                    ("Comptes", ", ".join(e["comptes"]) or "aucun"),
                    (
                        "Effets",
                        f"{fr_int(e['personnes'])} personne(s) concernée(s), "
                        f"{fr_int(e['enregistrements'])} enregistrement(s)",
                    ),
                    ("Catégories de données", ", ".join(e["categories"]) or "aucune"),
                    ("Mesures correctrices", "; ".join(e["mesures"]) or "à compléter"),
                    ("Notifiée à la CNIL", fr_datetime(e["notifie"]) if e["notifie"] else "non"),
                    ("Motif de non-notification", e["motif_non_notification"] or "sans objet"),
                ],
            )
        )
    return blocks
