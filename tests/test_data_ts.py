"""The .ts parser on small files written here (no data package needed)."""

import numpy as np
import pytest

from physim.data import TSFormatError, encode_labels, parse_ts, read_ts

GOOD = """# a comment before the header
#   with free text: µV
@problemName Toy
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 4
@classLabel true up down
@data
1,2,3,4:5,6,7,8:up
-1.5,0,2e-3,4:0,0,0,1:down

0.5,0.5,0.5,0.5:1,1,1,1:up
"""


def test_parse_good_file():
    d = parse_ts(GOOD)
    assert d.problem_name == "Toy"
    assert d.X.shape == (3, 4, 2)  # (samples, length, channels)
    assert d.X.dtype == np.float64
    np.testing.assert_array_equal(d.X[0, :, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(d.X[0, :, 1], [5, 6, 7, 8])
    np.testing.assert_array_equal(d.X[1, :, 0], [-1.5, 0, 2e-3, 4])
    assert d.labels == ("up", "down", "up")
    assert d.class_names == ("up", "down")  # declared order
    assert not d.is_regression and not d.has_missing
    codes, names = encode_labels(d.labels, d.class_names)
    assert names == ("down", "up")  # sorted
    np.testing.assert_array_equal(codes, [1, 0, 1])


def test_labels_sorted_numerically_when_numbers():
    codes, names = encode_labels(["10", "2", "1", "2"])
    assert names == ("1", "2", "10")
    np.testing.assert_array_equal(codes, [2, 1, 0, 1])


def test_missing_values_become_nan():
    text = GOOD.replace("@missing false", "@missing true").replace("0,0,0,1:down", "0,?,0,1:down")
    d = parse_ts(text)
    assert d.has_missing
    assert np.isnan(d.X[1, 1, 1]) and np.isnan(d.X).sum() == 1


def test_univariate_without_dimensions_and_regression_targets():
    text = "@problemName R\n@univariate true\n@targetLabel true\n@data\n1,2,3:0.5\n4,5,6:-2\n"
    d = parse_ts(text)
    assert d.X.shape == (2, 3, 1)
    np.testing.assert_array_equal(d.targets(), [0.5, -2.0])


def test_read_ts_tolerates_non_utf8_comment(tmp_path):
    path = tmp_path / "toy.ts"
    path.write_bytes(b"# amplitude in \xb5V (latin-1 byte)\n" + GOOD.encode())
    assert read_ts(path).X.shape == (3, 4, 2)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda t: t.replace("@data\n", ""), "is the '@data' line missing"),
        (lambda t: t.split("@data")[0], "no '@data' line"),
        (
            lambda t: t.replace("0.5,0.5,0.5,0.5:1,1,1,1:up", "0.5,0.5,0.5,0.5:up"),
            "line 15: expected 2 channels",
        ),
        (lambda t: t.replace("-1.5,0,", "-1.5,abc,"), r"line 13, channel 1: 'abc' is not a number"),
        (
            lambda t: t.replace("0,0,0,1:down", "0,?,0,1:down"),
            "missing value '\\?' but the header says @missing false",
        ),
        (lambda t: t.replace("5,6,7,8:up", "5,6,7:up"), "different lengths"),
        (lambda t: t.replace("@seriesLength 4", "@seriesLength 5"), "series length 4, expected 5"),
        (
            lambda t: t.replace("1,1,1,1:up", "1,1,1,1:sideways"),
            r"labels \['sideways'\] are not declared",
        ),
        (lambda t: t.replace("@timeStamps false", "@timeStamps true"), "time-stamped series"),
        (lambda t: t.replace("@equalLength true", "@equalLength false"), "unequal-length series"),
        (lambda t: t.replace("@missing false", "@missing maybe"), "must be 'true' or 'false'"),
        (lambda t: t.replace("@dimensions 2", "@dimensions two"), "must be an integer"),
        (
            lambda t: t.replace("@classLabel true up down", "@classLabel true"),
            "must list the class labels",
        ),
        (lambda t: "garbage before header\n" + t, "expected a header line"),
        (lambda t: t.split("@data")[0] + "@data\n", "no data rows"),
    ],
)
def test_malformed_files_give_clear_errors(mutate, match):
    with pytest.raises(TSFormatError, match=match):
        parse_ts(mutate(GOOD))
