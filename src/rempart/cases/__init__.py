"""Cases: exposure ledger, incidents, affected people, GDPR Art. 33/34 documents, evidence."""
