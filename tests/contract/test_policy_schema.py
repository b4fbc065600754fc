"""Policy files are checked against a schema: one line naming the file and the key, never a silent misreading."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage import ConfigurationError, default_taxonomy
from lineage.contract.policy import Policy, load_policy

GOOD = """
[organisation]
name = "Adv"
systems = ["adv-web"]

[storage]
regions = ["CN"]

[[recipients]]
name = "pay"
role = "processor"

[retention]
"user.contact" = 30

[age]
minimum = 14
"""


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "adv.toml"
    path.write_text(text)
    return load_policy(path, default_taxonomy())


def test_the_good_policy_loads(tmp_path: Path) -> None:
    """The reference policy of these tests loads with its values."""
    policy = _load(tmp_path, GOOD)
    assert isinstance(policy, Policy)
    assert policy.systems == ("adv-web",) and policy.minimum_age == 14


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('systems = ["adv-web"]', 'systems = "adv-web"', r"adv.toml: organisation.systems: must be a list of strings"),
        ("minimum = 14", "minimum = inf", r"adv.toml: age.minimum: must be a whole number"),
        ("minimum = 14", "minimum = nan", r"adv.toml: age.minimum: must be a whole number"),
        ("minimum = 14", "minimum = 14.5", r"adv.toml: age.minimum: must be a whole number"),
        ("minimum = 14", "minimum = true", r"age.minimum: must be a whole number .* got a boolean"),
        ("minimum = 14", "minimum = -1", r"age.minimum: must be from 0 to 150"),
        ('"user.contact" = 30', '"user.contact" = 1e400', r"retention.'user.contact': must be a whole number"),
        ('"user.contact" = 30', '"user.contact" = 99999999999', r"retention.'user.contact': must be from 0"),
        ('regions = ["CN"]', "regions = 'CN'", r"storage.regions: must be a list of strings, got a string"),
        ('regions = ["CN"]', "regoins = ['CN']", r"storage.regoins: is not a .*did you mean 'storage.regions'"),
        ("[age]", "[ages]", r"ages: is not a policy key .*did you mean 'age'"),
        ('role = "processor"', 'role = ["processor"]', r"recipients\[1\].role: must be a non-empty string, got a list"),
        ('name = "Adv"', "", r"organisation.name: is missing"),
        ("[organisation]", 'never_share = "x"\n[organisation]', r"never_share: must be an array of tables"),
    ],
)
def test_a_malformed_policy_is_one_line_naming_file_and_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    """Each malformed entry raises ConfigurationError naming the file, the key and the problem."""
    assert old in GOOD
    with pytest.raises(ConfigurationError, match=message) as caught:
        _load(tmp_path, GOOD.replace(old, new, 1))
    assert "\n" not in str(caught.value)


def test_unreadable_policy_files_are_one_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, and TOML that does not parse, raise ConfigurationError naming the file."""
    path = tmp_path / "bad.toml"
    path.write_bytes(b"\xff\xfe[organisation]")
    with pytest.raises(ConfigurationError, match="bad.toml: is not UTF-8"):
        load_policy(path, default_taxonomy())
    path.write_text("[organisation\n")
    with pytest.raises(ConfigurationError, match="bad.toml: not valid TOML"):
        load_policy(path, default_taxonomy())
