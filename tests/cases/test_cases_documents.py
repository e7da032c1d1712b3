"""The Art. 33 draft (JSON, Markdown, PDF), the Art. 34 letter and the Art. 33(5) register."""

from __future__ import annotations

import io
import json

import pytest
from cases_helpers import DAY, HOUR, T0
from pypdf import PdfReader
from test_cases_affected import harvest_alert, harvest_log

from rempart.cases.settings import DpoContact


@pytest.fixture()
def incident(cases_factory):
    log, exposed, _ = harvest_log()
    cases = cases_factory(
        log.events,
        controller="Tiers Payant Exemple SAS",
        controller_siren="123456789",
        dpo=DpoContact(name="Claire Martin", email="dpo@tp-exemple.fr", phone="01 23 45 67 89"),
    )
    inc = cases.store.open_from_alerts([harvest_alert()], actor="bot").created[0]
    return cases, inc, exposed


def test_art33_draft_has_every_item_gdpr_article_33_3_lists(incident):
    cases, inc, exposed = incident
    doc = cases.notification(inc, now=T0 + 21 * DAY)
    # (a) nature, categories and approximate number of data subjects and of records
    assert "confidentialité" in doc["nature"]["type_de_violation"]
    assert "PH0001" in doc["nature"]["description"] and "aspiration" in doc["nature"]["description"]
    assert doc["personnes_concernees"]["categories"]
    assert doc["personnes_concernees"]["nombre"] == len(exposed) == 201
    codes = {c["code"]: c for c in doc["donnees"]["categories"]}
    assert set(codes) == {
        "identite",
        "sexe",
        "date_naissance",
        "nir",
        "organisme_complementaire",
        "garanties",
    }
    assert codes["nir"]["libelle"] == "Numéro de sécurité sociale (NIR)"
    assert codes["nir"]["personnes"] == 201
    assert doc["donnees"]["nombre_enregistrements"] == 201
    # (b) DPO contact from the configuration
    assert doc["dpo"] == {
        "nom": "Claire Martin",
        "email": "dpo@tp-exemple.fr",
        "telephone": "01 23 45 67 89",
        "adresse": None,
    }
    # (c) likely consequences
    assert any("Usurpation d'identité" in c for c in doc["consequences_probables"])
    # (d) measures taken and proposed, including mitigation
    assert (
        doc["mesures"]["prises"] and doc["mesures"]["envisagees"] and doc["mesures"]["attenuation"]
    )
    assert any("multifacteur" in m for m in doc["mesures"]["envisagees"])
    # Art. 33(1) clock and Art. 33(4) phasing
    ch = doc["chronologie"]
    assert ch["prise_de_connaissance"] == "2026-03-21T10:00:00Z"
    assert ch["echeance_72h"] == "2026-03-24T10:00:00Z"
    assert ch["en_retard"] is False and ch["motifs_du_retard"] is None
    assert ch["debut_violation"] == "2026-03-21T07:00:00Z"
    assert doc["notification"]["type"] == "initiale" and doc["notification"]["par_etapes"]
    assert doc["responsable_de_traitement"]["nom"] == "Tiers Payant Exemple SAS"
    assert doc["information_des_personnes"]["risque_eleve"] is True


def test_when_notified_after_72_hours_the_draft_says_late_and_asks_for_reasons(incident):
    cases, inc, _ = incident
    doc = cases.notification(inc, now=T0 + 25 * DAY)
    assert doc["chronologie"]["en_retard"] is True
    assert doc["chronologie"]["retard"] == "38 h 00 min"
    assert "motifs du retard" in doc["chronologie"]["motifs_du_retard"]
    cases.store.set_detail(
        inc, "late_reason", "Périmètre établi après expertise judiciaire.", actor="dpo"
    )
    doc = cases.notification(inc, now=T0 + 25 * DAY)
    assert doc["chronologie"]["motifs_du_retard"] == "Périmètre établi après expertise judiciaire."


def test_complementary_notification_carries_the_initial_reference(incident):
    cases, inc, _ = incident
    cases.store.set_detail(inc, "notification_kind", "complementaire", actor="dpo")
    cases.store.set_detail(inc, "cnil_reference", "CNIL-2026-0042", actor="dpo")
    doc = cases.notification(inc)
    assert doc["notification"]["type"] == "complementaire"
    assert doc["notification"]["reference_initiale"] == "CNIL-2026-0042"
    assert doc["notification"]["par_etapes"] is False


def test_reports_render_to_markdown_json_and_a_real_pdf_with_the_same_facts(incident, tmp_path):
    cases, inc, _ = incident
    md = cases.write_report(inc, "md", tmp_path / "a33.md", actor="dpo").read_text("utf-8")
    data = json.loads(
        cases.write_report(inc, "json", tmp_path / "a33.json", actor="dpo").read_text()
    )
    pdf_path = cases.write_report(inc, "pdf", tmp_path / "a33.pdf", actor="dpo")
    pdf_text = "\n".join(
        p.extract_text() for p in PdfReader(io.BytesIO(pdf_path.read_bytes())).pages
    )
    assert data["personnes_concernees"]["nombre"] == 201
    for text in (md, " ".join(pdf_text.split())):
        assert "Délégué à la protection des données" in text
        assert "Claire Martin" in text and "dpo@tp-exemple.fr" in text
        assert "Numéro de sécurité sociale (NIR)" in text
        assert "Conséquences probables" in text
        assert "Mesures prises et envisagées" in text
        assert "Échéance de notification" in text
        assert "notification initiale" in text
        assert "201" in text
    assert pdf_path.read_bytes().startswith(b"%PDF")
    assert [e.action for e in cases.store.audit_trail(inc)][-3:] == ["report.art33"] * 3


def test_art34_letter_is_plain_french_with_placeholders_and_the_dpo_contact(incident):
    cases, inc, _ = incident
    letter = cases.letter(inc)
    assert "{{ nom }}" in letter and "{{ reference }}" in letter
    assert "Claire Martin" in letter and "dpo@tp-exemple.fr" in letter
    assert "numéro de sécurité sociale" in letter
    assert "cybermalveillance.gouv.fr" in letter


def test_register_lists_every_incident_notified_or_not(incident, tmp_path):
    cases, inc, _ = incident
    from cases_helpers import make_alert

    other = cases.store.open_from_alerts(
        [make_alert("brute_force", "PH0009", T0, T0 + HOUR, accounts=["PH0009"], ips=[])],
        actor="bot",
    ).created[0]
    cases.store.transition(other, "closed", actor="alice", reason="false positive")
    cases.store.transition(inc, "notified", actor="dpo")
    entries = {e["id"]: e for e in cases.register()}
    assert set(entries) == {inc, other}
    assert entries[inc]["personnes"] == 201 and entries[inc]["notifie"] is not None
    assert entries[other]["notifie"] is None and entries[other]["statut"] == "closed"
    md = cases.write_register("md", tmp_path / "reg.md").read_text("utf-8")
    assert f"Incident n° {other}" in md and "article 33, paragraphe 5" in md
    assert cases.write_register("pdf", tmp_path / "reg.pdf").read_bytes().startswith(b"%PDF")
