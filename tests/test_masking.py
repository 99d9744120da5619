"""Masking secret values in log lines and outputs (taskloom.core.masking)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from taskloom.core.masking import MASK, MIN_LENGTH, Masker

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    "k3lqYw1Jq9Gd0nZt2dH7bVxvK5z0PpQ8f1mYh3aV\n"
    "-----END PRIVATE KEY-----"
)


def test_masks_a_secret_in_the_middle_of_a_line():
    masker = Masker(["hunter22"])
    assert masker.mask("login with hunter22 now") == f"login with {MASK} now"
    assert masker.mask("hunter22hunter22") == MASK * 2


def test_masks_several_secrets():
    masker = Masker(["alpha-token", "beta-token"])
    line = "a=alpha-token b=beta-token c=gamma-token"
    assert masker.mask(line) == f"a={MASK} b={MASK} c=gamma-token"


def test_a_secret_containing_another_is_masked_whole():
    # Whichever order they are given in, the longer one wins: no "prefix_" left over.
    for order in (["mask", "prefix_mask"], ["prefix_mask", "mask"]):
        masker = Masker(order)
        assert masker.mask("x prefix_mask y mask z") == f"x {MASK} y {MASK} z"


def test_short_values_are_not_masked():
    masker = Masker(["a", "on", "abc", ""])
    assert not masker
    assert masker.mask("a cat sat on abc") == "a cat sat on abc"
    assert Masker(["abcd"]).mask("xabcdx") == f"x{MASK}x"
    assert MIN_LENGTH == 4


def test_min_length_is_configurable():
    assert Masker(["abc"], min_length=3).mask("abc!") == f"{MASK}!"
    assert Masker(["abcd"], min_length=5).mask("abcd") == "abcd"
    with pytest.raises(ValueError, match="min_length"):
        Masker(["x"], min_length=0)


def test_a_multi_line_secret_is_masked_whole_and_line_by_line():
    masker = Masker([PEM])
    assert masker.mask(f"key:\n{PEM}\nend") == f"key:\n{MASK}\nend"
    # Logs are stored one line at a time: every line of the key is masked on its own.
    for line in PEM.splitlines():
        assert masker.mask(f"> {line}") == f"> {MASK}"


def test_multi_line_secret_lines_shorter_than_min_length_are_left_alone():
    masker = Masker(["first-line\nab\nthird-line"])
    assert masker.mask("ab") == "ab"
    assert masker.mask("first-line") == MASK


def test_json_escaped_form_is_masked():
    secret = 'pa"ss\\word\nline2'
    masker = Masker([secret])
    printed = json.dumps({"password": secret})
    assert secret not in printed  # the raw value never appears; only its escaped form
    assert masker.mask(printed) == '{"password": "***"}'


def test_non_ascii_secret_is_masked_in_both_json_forms():
    secret = "mot-de-passe-été"
    masker = Masker([secret])
    assert masker.mask(json.dumps(secret)) == f'"{MASK}"'
    assert masker.mask(json.dumps(secret, ensure_ascii=False)) == f'"{MASK}"'


def test_repr_and_url_encoded_forms_are_masked():
    secret = "it's a/secret&key\n"
    masker = Masker([secret])
    assert masker.mask(f"value={secret!r}") == f'value="{MASK}"'  # repr: "it's a/secret&key\\n"
    assert masker.mask(f"https://x.test/?token={quote(secret, safe='')}") == f"https://x.test/?token={MASK}"


def test_mask_value_masks_keys_and_values_recursively_and_copies():
    masker = Masker(["s3cr3t-value", "token-name"])
    value = {
        "plain": "nothing here",
        "nested": {"token-name": ["a s3cr3t-value b", 42, None, True, {"deep": "s3cr3t-value"}]},
        "number": 3.5,
        "list": ["s3cr3t-value", ("tuple s3cr3t-value",)],
    }
    before = json.dumps(value, default=list)
    masked = masker.mask_value(value)
    assert masked == {
        "plain": "nothing here",
        "nested": {MASK: [f"a {MASK} b", 42, None, True, {"deep": MASK}]},
        "number": 3.5,
        "list": [MASK, (f"tuple {MASK}",)],
    }
    assert json.dumps(value, default=list) == before  # the input is untouched
    assert masker.mask_value(7) == 7 and masker.mask_value(None) is None


def test_no_secrets_is_identity_and_fast():
    masker = Masker([])
    assert not masker
    text = "an ordinary line " * 10
    assert masker.mask(text) is text
    assert masker.mask_value({"a": ["b", 1]}) == {"a": ["b", 1]}
    start = time.perf_counter()
    for _ in range(100_000):
        masker.mask(text)
    assert time.perf_counter() - start < 1.0


def test_many_secrets_one_pass():
    secrets = [f"secret-number-{i:04d}" for i in range(500)]
    masker = Masker(secrets)
    assert masker
    line = " ".join(secrets[::50])
    assert masker.mask(line) == " ".join([MASK] * 10)


def test_mask_tail_masks_the_start_of_a_secret_that_ends_a_cut_line():
    masker = Masker(["hunter2-very-secret"])
    assert masker.mask_tail("token=hunter2-ve") == "token=***"
    assert masker.mask_tail("token=hunter2-very-secret and more") == "token=*** and more"
    assert masker.mask_tail("ends with hun") == "ends with hun"  # 3 characters: below the minimum
    assert Masker([]).mask_tail("token=hunter2-ve") == "token=hunter2-ve"
