"""Data-protection protocols: identifiers, scanning, pseudonymisation, encryption, key rotation."""
