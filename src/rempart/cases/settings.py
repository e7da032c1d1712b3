"""Configuration of incidents and breach documents (section ``cases``)."""

from __future__ import annotations

from rempart.settings import StrictModel


class DpoContact(StrictModel):
    name: str = "Délégué à la protection des données"
    email: str = "dpo@example.fr"
    phone: str | None = None
    address: str | None = None


class CasesSettings(StrictModel):
    #: Legal name of the data controller (responsable de traitement).
    controller: str = "Opérateur de tiers payant (exemple)"
    dpo: DpoContact = DpoContact()
