"""Validators against published vectors, and their properties (hypothesis)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from protect_strategies import luhn_numbers, nirs
from stdnum.fr import nir as stdnum_nir

from rempart.protect import identifiers as ids

# python-stdnum's documented NIR examples (stdnum/fr/nir.py), incl. both Corsican departments.
PUBLISHED_NIRS = ["2 95 10 99 126 111 93", "253072B07300470", "253072A07300443"]


@pytest.mark.parametrize("nir", PUBLISHED_NIRS)
def test_published_nirs_are_valid(nir):
    assert ids.is_valid_nir(nir)
    assert ids.validate_nir(nir) == nir.replace(" ", "")


def test_published_nir_with_wrong_key_is_rejected():
    assert not ids.is_valid_nir("295109912611199")  # stdnum's InvalidChecksum example
    with pytest.raises(ids.IdentifierError, match="check key"):
        ids.validate_nir("295109912611199")


def test_corsica_key_uses_19_for_2a_and_18_for_2b():
    assert ids.nir_key("253072A073004") == f"{97 - 2530719073004 % 97:02d}" == "43"
    assert ids.nir_key("253072B073004") == f"{97 - 2530718073004 % 97:02d}" == "70"
    assert not ids.is_valid_nir("253072C07300443")


def test_parse_explains_sex_year_month_and_place():
    info = ids.parse("2 95 10 99 126 111 93")
    assert (info.sex, info.birth_year, info.birth_month) == ("F", 95, 10)
    assert info.place_kind == "etranger" and info.country == "126"
    assert "femme" in info.explain() and "étranger" in info.explain()
    corse = ids.parse("253072B07300470")
    assert corse.place_kind == "corse" and corse.department == "2B" and corse.commune == "2B073"


def test_overseas_department_has_three_digits_and_two_digit_commune():
    body = "1850597105123"
    info = ids.parse(body + ids.nir_key(body))
    assert info.place_kind == "outre-mer" and info.department == "971" and info.commune == "97105"


def test_temporary_nia_and_incomplete_month_are_flagged():
    body = "7853099001123"  # NIA (7), month 30 (unknown civil-status month)
    info = ids.parse(body + ids.nir_key(body))
    assert info.temporary and info.sex == "M"
    assert info.month_incomplete and info.birth_month is None
    assert "inconnu" in info.explain()


@pytest.mark.parametrize("month", ["00", "13", "19", "43", "49"])
def test_impossible_months_are_rejected_even_with_a_right_key(month):
    body = f"185{month}75056123"
    assert not ids.is_valid_nir(body + ids.nir_key(body))


def test_sex_digit_other_than_1_2_7_8_is_rejected():
    body = "3850575056123"
    assert not ids.is_valid_nir(body + ids.nir_key(body))


def test_separators_and_detached_key_are_accepted():
    assert ids.is_valid_nir("2.95.10.99.126.111.93")
    assert ids.is_valid_nir("2-95-10-99-126-111-93")
    assert ids.is_valid_nir("2951099126111 93")


def test_siren_siret_published_vectors():
    # python-stdnum's documented examples
    assert ids.is_valid_siren("404833048") and not ids.is_valid_siren("404833047")
    assert ids.is_valid_siret("73282932000074") and not ids.is_valid_siret("73282932000079")
    assert ids.is_valid_siret("732 829 320 00074")
    assert ids.is_valid_siret("35600000000048")  # La Poste: digit-sum rule, not Luhn


def test_iban_published_example():
    assert ids.is_valid_iban("FR14 2004 1010 0505 0001 3M02 606")
    assert not ids.is_valid_iban("FR15 2004 1010 0505 0001 3M02 606")
    assert ids.is_valid_iban("GB82 WEST 1234 5698 7654 32")  # other countries via stdnum


def test_luhn_reference_vector_and_rpps():
    assert ids.luhn_ok("79927398713") and not ids.luhn_ok("79927398710")
    assert ids.is_valid_rpps("10003000004") == ids.luhn_ok("10003000004")
    assert not ids.is_valid_rpps("20003000004")  # RPPS starts with 1


def test_finess_numbers_of_real_establishments():
    # AP-HP (legal entity) and two Paris hospitals, from the public FINESS directory
    for finess in ("750712184", "750803447", "750100018"):
        assert ids.is_valid_finess(finess)
    assert not ids.is_valid_finess("750712185")


def test_adeli_is_structural():
    assert ids.is_valid_adeli("751234567")
    assert ids.is_valid_adeli("2A1234567")
    assert not ids.is_valid_adeli("001234567")
    assert not ids.is_valid_adeli("75123456")


@pytest.mark.parametrize(
    "phone",
    [
        "06 12 34 56 78",
        "06.12.34.56.78",
        "0612345678",
        "+33 6 12 34 56 78",
        "+33612345678",
        "0033 6 12 34 56 78",
    ],
)
def test_french_phone_writings(phone):
    assert ids.normalize_phone(phone) == "0612345678"


def test_not_french_phones():
    assert ids.normalize_phone("0012345678") is None
    assert ids.normalize_phone("612345678") is None


def test_emails():
    assert ids.is_valid_email("marie.dupont+cpam@exemple.fr")
    assert not ids.is_valid_email("marie@@exemple.fr")
    assert not ids.is_valid_email("marie@exemple")


@pytest.mark.parametrize(
    "text", ["12/03/1985", "12-03-1985", "12.03.1985", "1985-03-12", "12 mars 1985", "12 MARS 1985"]
)
def test_french_birth_date_writings(text):
    assert ids.parse_birth_date(text) == date(1985, 3, 12)


def test_first_of_month_and_impossible_dates():
    assert ids.parse_birth_date("1er janvier 1990") == date(1990, 1, 1)
    assert ids.parse_birth_date("31/02/1990") is None
    assert ids.parse_birth_date("01/01/2999") is None


# ----------------------------------------------------------------------------- properties


@given(nirs())
def test_every_generated_nir_is_valid_for_us_and_for_stdnum(nir):
    assert ids.is_valid_nir(nir)
    assert stdnum_nir.is_valid(nir)


@given(nirs(), st.sampled_from([" ", ".", "-"]))
def test_nir_validity_does_not_depend_on_separators(nir, sep):
    written = sep.join([nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:]])
    assert ids.is_valid_nir(written)
    assert ids.validate_nir(written) == nir


@given(nirs(corsica=False), st.integers(0, 14), st.integers(1, 9))
def test_any_single_digit_error_in_a_nir_is_caught(nir, pos, delta):
    changed = nir[:pos] + str((int(nir[pos]) + delta) % 10) + nir[pos + 1 :]
    assert not ids.is_valid_nir(changed)


@given(nirs(), st.integers(1, 96))
def test_a_wrong_key_never_validates(nir, shift):
    key = (int(nir[13:]) - 1 + shift) % 97 + 1
    assert not ids.is_valid_nir(nir[:13] + f"{key:02d}")


@given(st.text(max_size=40))
# Digits of other kinds: ``str.isdigit`` takes them, ``int`` refuses or reads them.
@example("0¹")
@example("1²345678901")
@example("٣٣٣٣٣٣٣٣٣")
@example("1٢٣٤٥٦٧٨٩٠١٢٣٤")
@example("2A¹")
def test_validators_never_raise(text):
    for check in ids.VALIDATORS.values():
        assert check(text) in (True, False)


@given(luhn_numbers(11, prefix="1"), st.integers(0, 10), st.integers(1, 9))
def test_rpps_luhn_catches_single_digit_errors(rpps, pos, delta):
    assert ids.is_valid_rpps(rpps)
    changed = rpps[:pos] + str((int(rpps[pos]) + delta) % 10) + rpps[pos + 1 :]
    assume(changed[0] == "1")
    assert not ids.is_valid_rpps(changed)


@given(luhn_numbers(9))
def test_siren_is_luhn(siren):
    assert ids.is_valid_siren(siren)


@given(luhn_numbers(9), st.text("0123456789", min_size=4, max_size=4))
def test_exactly_one_last_digit_completes_a_siret(siren, nic):
    candidates = [siren + nic + str(d) for d in range(10)]
    valid = [c for c in candidates if ids.is_valid_siret(c)]
    assert len(valid) == 1 or siren.startswith("356000000")
    assert all(ids.is_valid_siren(v[:9]) for v in valid)


@given(st.text("0123456789", min_size=23, max_size=23), st.integers(0, 26), st.integers(1, 9))
def test_iban_mod97_catches_single_digit_errors(bban, pos, delta):
    from stdnum import iban

    full = "FR" + iban.calc_check_digits("FR00" + bban) + bban
    assert ids.is_valid_iban(full)
    assume(full[pos].isdigit() and pos >= 2)
    changed = full[:pos] + str((int(full[pos]) + delta) % 10) + full[pos + 1 :]
    assert not ids.is_valid_iban(changed)


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)),
    st.sampled_from(["{d:%d/%m/%Y}", "{d:%d-%m-%Y}", "{d:%d.%m.%Y}", "{d:%Y-%m-%d}"]),
)
def test_any_birth_date_round_trips_in_french_formats(d, fmt):
    assert ids.parse_birth_date(fmt.format(d=d)) == d


@given(st.text("0123456789", min_size=8, max_size=8), st.sampled_from(["", "+33", "0033"]))
def test_phone_prefixes_normalise_to_national_form(rest, prefix):
    national = "06" + rest
    written = (prefix + national[1:]) if prefix else national
    assert ids.normalize_phone(written) == national


@given(st.integers(1, 95), st.text("0123456789", min_size=6, max_size=6), st.integers(1, 9))
def test_finess_luhn_key_catches_single_digit_errors(dept, serial, delta):
    from stdnum import luhn

    base = f"{dept:02d}{serial}"
    finess = base + luhn.calc_check_digit(base)
    assert ids.is_valid_finess(finess)
    changed = finess[:-1] + str((int(finess[-1]) + delta) % 10)
    assert not ids.is_valid_finess(changed)


@given(
    st.sampled_from([f"{d:02d}" for d in range(1, 96)] + ["2A", "2B", "97"]),
    st.text("123456789", min_size=1, max_size=1),
    st.text("0123456789", min_size=6, max_size=6),
)
def test_adeli_structure_accepts_every_department(dept, profession, serial):
    assert ids.is_valid_adeli(dept + profession + serial)
    assert not ids.is_valid_adeli("00" + profession + serial)


@given(
    st.from_regex(
        r"[a-z][a-z0-9._-]{0,20}[a-z0-9]@[a-z][a-z0-9-]{0,10}\.(fr|com|org)", fullmatch=True
    )
)
def test_plain_email_addresses_are_valid(email):
    assume(".." not in email and "._" not in email and "-." not in email.split("@")[1])
    assert ids.is_valid_email(email)
    assert not ids.is_valid_email(email.replace("@", ""))
