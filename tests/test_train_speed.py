"""``benchmarks/train_speed.py``'s ``--overrides`` rows: an option's cost beside the preset's row."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import train_speed  # noqa: E402

TINY = [
    "train_speed.py",
    "--modes",
    "pixels",
    "--devices",
    "cpu",
    "--batch-size",
    "2",
    "--seq-len",
    "2",
    "--steps",
    "1",
]


def test_each_override_adds_a_vim_row_with_that_config(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [*TINY, "--overrides", '{"decoder_broadcast": 2}'])
    train_speed.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| cpu | pixels |")]
    assert [row.split(" | ")[2] for row in rows] == ["vim", "vrnn", 'vim, {"decoder_broadcast": 2}']
    preset_params, broadcast_params = (int(rows[i].split(" | ")[3].replace(",", "")) for i in (0, 2))
    assert broadcast_params != preset_params  # the row's model was built with the override


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", r"--overrides: .*expected a JSON object of VIMConfig fields"),
        ("[1]", r"expected JSON objects of VIMConfig fields"),
        ('{"decoder_broadcast": 3}', r"decoder_broadcast=3 \(expected one of \(1, 2, 4\)\)"),
        ('{"nope": 1}', r"unexpected keyword argument 'nope'"),
    ],
)
def test_bad_overrides_are_refused_naming_them(monkeypatch, capsys, text, message):
    monkeypatch.setattr(sys, "argv", [*TINY, "--overrides", text])
    with pytest.raises(SystemExit):
        train_speed.main()
    assert re.search(message, capsys.readouterr().err)
