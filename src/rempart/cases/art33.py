"""The GDPR Art. 33 notification draft for the CNIL, as structured data (French texts).

``build_notification`` gathers every item Art. 33(3) lists, plus the Art. 33(1) clock and the
Art. 33(4) phasing, into one JSON-ready dict; ``render_markdown`` and ``rempart.cases.pdf``
render that same dict, so the three formats never disagree.

Art. 33(3): (a) nature of the breach, categories and approximate number of data subjects and of
personal data records; (b) name and contact details of the DPO; (c) likely consequences;
(d) measures taken or proposed, including to mitigate possible adverse effects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from rempart import __version__
from rempart.cases.affected import AffectedPeople
from rempart.cases.incidents import Incident
from rempart.cases.settings import CasesSettings
from rempart.cases.timeline import Timeline
from rempart.cases.window import AccountWindow, iso

try:
    from zoneinfo import ZoneInfo

    PARIS: tzinfo = ZoneInfo("Europe/Paris")
    _ZONE = "heure de Paris"
except Exception:  # pragma: no cover - no tz database on this host
    PARIS = UTC
    _ZONE = "UTC"

CATEGORY_LABELS = {
    "identite": "Identité (nom, prénom)",
    "sexe": "Sexe",
    "date_naissance": "Date de naissance",
    "nir": "Numéro de sécurité sociale (NIR)",
    "organisme_complementaire": "Organisme d'assurance maladie complémentaire",
    "garanties": "Garanties du contrat complémentaire (niveau de couverture)",
    "adresse": "Adresse postale",
    "soins": "Données relatives aux soins (actes, prestations)",
}

_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)

STATUS_FR = {
    "new": "nouvel incident",
    "triage": "en cours d'analyse",
    "contained": "confiné",
    "notified": "notifié",
    "closed": "clos",
}


def fr_datetime(ts: float | None) -> str:
    """``21 mars 2026 à 09 h 05 (heure de Paris)``."""
    if ts is None:
        return "non déterminé"
    d = datetime.fromtimestamp(ts, tz=PARIS)
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year} à {d.hour:02d} h {d.minute:02d} ({_ZONE})"


def fr_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    hours, minutes = int(seconds // 3600), int(seconds % 3600 // 60)
    if hours >= 48:
        return f"{hours // 24} jours et {hours % 24} h"
    return f"{hours} h {minutes:02d} min"


def fr_int(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def _consequences(categories: Sequence[str]) -> list[str]:
    cats = set(categories)
    out = []
    if {"identite", "nir"} <= cats or {"identite", "date_naissance"} <= cats:
        out.append(
            "Hameçonnage ciblé (courriels, SMS ou appels se réclamant de l'assurance maladie, "
            "d'une mutuelle ou d'un professionnel de santé) rendu crédible par les données "
            "divulguées."
        )
        out.append(
            "Usurpation d'identité et tentatives de fraude (ouverture de comptes, démarches "
            "administratives, fraude aux prestations) à l'aide de l'identité et du NIR."
        )
    if "garanties" in cats or "organisme_complementaire" in cats:
        out.append(
            "Atteinte à la vie privée : révélation de l'organisme complémentaire et du niveau de "
            "couverture, pouvant être exploitée pour des escroqueries ou du démarchage abusif."
        )
    if "soins" in cats:
        out.append(
            "Divulgation de données de santé (actes et prestations) : atteinte grave à la vie "
            "privée, risque de discrimination ou de chantage."
        )
    out.append(
        "Revente ou publication des données sur des forums criminels, prolongeant le risque "
        "dans le temps ; aucune donnée bancaire ni mot de passe des personnes n'est concerné "
        "par les catégories ci-dessus."
        if not {"adresse"} & cats
        else "Revente ou publication des données sur des forums criminels."
    )
    return out


def _high_risk(categories: Sequence[str]) -> bool:
    return "nir" in categories or "soins" in categories


def _decision_measures(timeline: Timeline | None) -> list[str]:
    if timeline is None:
        return []
    return [f"{fr_datetime(e.ts)} : {e.text}" for e in timeline.entries if e.kind == "decision"]


def build_notification(
    incident: Incident,
    affected: AffectedPeople,
    windows: Sequence[AccountWindow],
    settings: CasesSettings,
    *,
    timeline: Timeline | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Every Art. 33 item of the draft, JSON-ready (texts in French, times ISO and French)."""
    now = time.time() if now is None else now
    details = incident.details
    kind = details.get("notification_kind", "initiale")
    deadline = incident.aware_at + settings.notification_deadline_hours * 3600
    notified = incident.notified_at or now
    late = notified > deadline
    start = min((w.start for w in windows), default=incident.first_seen)
    end = max((w.end for w in windows), default=incident.last_seen)
    first_alert = min((a.detected_at for a in incident.alerts), default=incident.first_seen)
    cats = sorted(affected.people_by_category, key=lambda c: -affected.people_by_category[c])
    accounts = incident.accounts
    rules = sorted({a.rule_id for a in incident.alerts})
    nature_text = details.get("nature") or (
        f"Violation de la confidentialité de données à caractère personnel. "
        f"{len(accounts)} compte(s) professionnel(s) du portail de tiers payant "
        f"({', '.join(accounts) or 'aucun compte identifié'}) ont été utilisés par un tiers non "
        f"autorisé, au moyen des identifiants légitimes des professionnels de santé "
        f"(vraisemblablement obtenus par hameçonnage), depuis des réseaux et des logiciels "
        f"clients inhabituels. Le "
        f"tiers a consulté en masse les pages d'affichage des droits des bénéficiaires "
        f"(« aspiration »), chaque requête étant authentifiée. Origine : acte malveillant externe. "
        f"Détection par Rempart (règles : {', '.join(rules) or 'aucune'})."
    )
    window_lines = [
        {
            "compte": w.account,
            "debut": iso(w.start),
            "fin": iso(w.end),
            "debut_fr": fr_datetime(w.start),
            "fin_fr": fr_datetime(w.end),
            "origine": "estimation" if w.origin == "estimated" else "fixée par un analyste",
            "raisonnement": list(w.reasoning),
        }
        for w in windows
    ]
    taken = list(details.get("measures_taken") or [])
    if incident.contained_at is not None:
        taken.append(
            f"Incident confiné le {fr_datetime(incident.contained_at)} (accès des comptes "
            f"concernés bloqués, mots de passe réinitialisés)."
        )
    taken += _decision_measures(timeline)
    taken.append(
        "Identification exacte des personnes concernées à partir du registre des consultations "
        "(journal d'exposition), sans estimation."
    )
    proposed = list(details.get("measures_proposed") or []) or [
        "Authentification multifacteur obligatoire pour tous les comptes professionnels.",
        "Limitation du volume de consultations par compte et détection des extractions "
        "anormales en temps réel.",
        "Sensibilisation des professionnels de santé au hameçonnage.",
        "Information des personnes concernées (article 34) et mise en place d'une cellule "
        "d'écoute ; vigilance renforcée sur les demandes de modification de coordonnées.",
    ]
    high = _high_risk(cats)
    return {
        "document": "Projet de notification de violation de données personnelles à la CNIL "
        "(article 33 du RGPD)",
        "genere_le": iso(now),
        "genere_par": f"Rempart {__version__}",
        "incident": {
            "id": incident.id,
            "titre": incident.title,
            "statut": STATUS_FR.get(incident.status, incident.status),
        },
        "notification": {
            "type": kind,
            "reference_initiale": details.get("cnil_reference"),
            "par_etapes": kind == "initiale" and incident.status not in ("notified", "closed"),
            "commentaire": "Notification initiale : les informations pourront être complétées "
            "ultérieurement (article 33, paragraphe 4)."
            if kind == "initiale"
            else "Notification complémentaire d'une notification initiale.",
        },
        "responsable_de_traitement": {
            "nom": settings.controller,
            "adresse": settings.controller_address,
            "siren": settings.controller_siren,
        },
        "dpo": {
            "nom": settings.dpo.name,
            "email": settings.dpo.email,
            "telephone": settings.dpo.phone,
            "adresse": settings.dpo.address,
        },
        "chronologie": {
            "debut_violation": iso(start),
            "debut_violation_fr": fr_datetime(start),
            "fin_violation": iso(end),
            "fin_violation_fr": fr_datetime(end),
            "premiere_alerte": iso(first_alert),
            "premiere_alerte_fr": fr_datetime(first_alert),
            "prise_de_connaissance": iso(incident.aware_at),
            "prise_de_connaissance_fr": fr_datetime(incident.aware_at),
            "confinement": iso(incident.contained_at) if incident.contained_at else None,
            "confinement_fr": fr_datetime(incident.contained_at),
            "echeance_72h": iso(deadline),
            "echeance_72h_fr": fr_datetime(deadline),
            "delai_heures": settings.notification_deadline_hours,
            "notification": iso(notified),
            "notification_fr": fr_datetime(notified),
            "en_retard": late,
            "retard": fr_duration(notified - deadline) if late else None,
            "motifs_du_retard": details.get("late_reason")
            or ("à compléter : motifs du retard (article 33, paragraphe 1)" if late else None),
            "fenetres_de_compromission": window_lines,
        },
        "nature": {
            "type_de_violation": ["confidentialité"],
            "description": nature_text,
            "comptes_concernes": accounts,
            "adresses_ip": incident.ips,
            "origine": "acte malveillant externe (usurpation d'identifiants)",
        },
        "personnes_concernees": {
            "categories": ["Assurés et ayants droit bénéficiaires du tiers payant"],
            "nombre": affected.count,
            "nombre_est_exact": True,
            "exclues_car_deja_servies": affected.excluded
            if affected.exclude_served_before
            else None,
            "attribution": "activité de l'attaquant uniquement"
            if affected.attribution == "actor"
            else "toute consultation des comptes pendant la fenêtre",
        },
        "donnees": {
            "categories": [
                {
                    "code": c,
                    "libelle": CATEGORY_LABELS.get(c, c),
                    "personnes": affected.people_by_category[c],
                    "enregistrements": affected.records_by_category.get(c, 0),
                }
                for c in cats
            ],
            "nombre_enregistrements": affected.records,
            "donnees_sensibles": "NIR (numéro d'inscription au répertoire)"
            if "nir" in cats
            else None,
        },
        "consequences_probables": details.get("consequences") or _consequences(cats),
        "mesures": {
            "prises": taken,
            "envisagees": proposed,
            "attenuation": [
                "Information individuelle des personnes concernées avec des conseils de "
                "vigilance (hameçonnage, usurpation d'identité).",
                "Surveillance des tentatives de fraude associées aux NIR concernés.",
            ],
        },
        "information_des_personnes": {
            "risque_eleve": high,
            "decision": "Information des personnes concernées prévue (article 34)"
            if high
            else "À apprécier : le risque pour les personnes ne paraît pas élevé",
            "nombre": affected.count,
        },
        "articles": {
            "33(3)(a)": ["nature", "personnes_concernees", "donnees"],
            "33(3)(b)": ["dpo"],
            "33(3)(c)": ["consequences_probables"],
            "33(3)(d)": ["mesures"],
            "33(1)": ["chronologie"],
            "33(4)": ["notification"],
        },
    }
