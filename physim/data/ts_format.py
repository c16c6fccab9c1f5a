"""Reader for the UEA/UCR ``.ts`` time-series text format (written for physim, no dependencies).

Layout of a ``.ts`` file::

    # comment lines (anywhere before @data)
    @problemName SelfRegulationSCP1
    @timeStamps false
    @missing false
    @univariate false
    @dimensions 6
    @equalLength true
    @seriesLength 896
    @classLabel true negativity positivity
    @data
    0.1,0.2,...,0.3:1.0,...:negativity        # ch1 : ch2 : ... : label

Each data row holds one sample: its channels separated by ``:``, the values of a channel by
``,``, and (when ``@classLabel true`` or ``@targetLabel true``) the label last. ``?`` marks a
missing value and becomes NaN; it is an error when the header says ``@missing false``.
Only equal-length series without time stamps are supported (all physim datasets are), and
the parser says so when a file is otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class TSFormatError(ValueError):
    """A ``.ts`` file does not follow the format; the message names the line and the fix."""


@dataclass(frozen=True, eq=False)
class TSData:
    """Parsed content of a ``.ts`` file.

    Attributes
    ----------
    problem_name : str
        ``@problemName`` ("" when absent).
    X : ndarray, shape (n_samples, length, n_channels), float64
        Series, batch-first; missing values (``?``) are NaN.
    labels : tuple of str
        Raw label string of every row (empty tuple when the file has no labels).
    class_names : tuple of str
        Labels declared by ``@classLabel true …`` in file order (empty when none declared).
    is_regression : bool
        ``@targetLabel true``: the labels are real-valued targets.
    header : dict
        Every header tag (lower-cased, without ``@``) → its raw value string.
    """

    problem_name: str
    X: np.ndarray
    labels: tuple[str, ...]
    class_names: tuple[str, ...]
    is_regression: bool
    header: dict[str, str]

    @property
    def has_missing(self) -> bool:
        return bool(np.isnan(self.X).any())

    def targets(self) -> np.ndarray:
        """Real-valued targets of a ``@targetLabel true`` file, shape (n_samples,)."""
        if not self.is_regression:
            raise TSFormatError(
                f"{self.problem_name or 'this file'} has class labels, not regression targets"
            )
        return np.array([float(s) for s in self.labels])


def encode_labels(
    labels: list[str] | tuple[str, ...], declared: tuple[str, ...] = ()
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map label strings to ints 0..K−1 in sorted order.

    The classes are ``declared`` if given (else the distinct labels seen), sorted numerically
    when every class parses as a number ("2" < "10") and as strings otherwise.

    Returns
    -------
    codes : ndarray of int64, shape (n,)
    class_names : tuple of str, ``class_names[code]`` is the original label
    """
    classes = set(declared) if declared else set(labels)
    unknown = sorted(set(labels) - classes)
    if unknown:
        raise TSFormatError(
            f"labels {unknown[:5]} are not among the declared classes {sorted(classes)}"
        )
    try:
        names = tuple(sorted(classes, key=float))
    except ValueError:
        names = tuple(sorted(classes))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[s] for s in labels], dtype=np.int64), names


def _flag(value: str, tag: str, lineno: int) -> bool:
    word = value.split()[0].lower() if value.split() else ""
    if word not in ("true", "false"):
        raise TSFormatError(f"line {lineno}: @{tag} must be 'true' or 'false', got {value!r}")
    return word == "true"


def _int(value: str, tag: str, lineno: int) -> int:
    try:
        out = int(value.split()[0])
    except (ValueError, IndexError):
        raise TSFormatError(f"line {lineno}: @{tag} must be an integer, got {value!r}") from None
    if out < 1:
        raise TSFormatError(f"line {lineno}: @{tag} must be >= 1, got {out}")
    return out


def _channel(text: str, lineno: int, dim: int) -> np.ndarray:
    tokens = text.split(",")
    try:
        # '?' is the format's missing value; numpy parses 'nan' strings directly
        return np.array(["nan" if t.strip() == "?" else t for t in tokens], dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if t.strip() != "?" and not _is_float(t))
        raise TSFormatError(
            f"line {lineno}, channel {dim + 1}: {bad.strip()!r} is not a number "
            "(values are comma-separated numbers, '?' for a missing value)"
        ) from None


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_ts(text: str, source: str = "(text)") -> TSData:
    """Parse the text of a ``.ts`` file. See the module docstring for the format.

    Parameters
    ----------
    text : str
        Whole file content.
    source : str
        Name used in error messages (a path).

    Raises
    ------
    TSFormatError
        With the line number and what must hold: missing ``@data``, a row with the wrong
        number of channels, a non-numeric value, unequal lengths, an undeclared label, ...
    """
    header: dict[str, str] = {}
    where: dict[str, int] = {}  # tag -> line number, for error messages
    lines = text.splitlines()
    data_start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise TSFormatError(
                f"{source}, line {i + 1}: expected a header line starting with '@' or a "
                f"'#' comment before @data, got {line[:40]!r} (is the '@data' line missing?)"
            )
        tag, _, value = line[1:].partition(" ")
        tag = tag.lower()
        if tag == "data":
            data_start = i + 1
            break
        header[tag] = value.strip()
        where[tag] = i + 1
    if data_start is None:
        raise TSFormatError(f"{source}: no '@data' line; a .ts file needs a header then @data")

    def flag(tag: str, default: bool) -> bool:
        return _flag(header[tag], tag, where[tag]) if tag in header else default

    def count(tag: str) -> int | None:
        return _int(header[tag], tag, where[tag]) if tag in header else None

    if flag("timestamps", False):
        raise TSFormatError(
            f"{source}: time-stamped series (@timeStamps true) are not supported; "
            "physim reads equally sampled series only"
        )
    if not flag("equallength", True):
        raise TSFormatError(
            f"{source}: unequal-length series (@equalLength false) are not supported; "
            "resample or pad the series to one length first"
        )
    missing_ok = flag("missing", True)
    n_dims = count("dimensions")
    if n_dims is None and flag("univariate", False):
        n_dims = 1
    length = count("serieslength")

    has_class = flag("classlabel", False)
    class_names = tuple(header["classlabel"].split()[1:]) if has_class else ()
    if has_class and not class_names:
        raise TSFormatError(
            f"{source}, line {where['classlabel']}: '@classLabel true' must list the class "
            "labels, e.g. '@classLabel true up down'"
        )
    is_regression = flag("targetlabel", False)
    if has_class and is_regression:
        raise TSFormatError(f"{source}: @classLabel true and @targetLabel true are exclusive")
    has_label = has_class or is_regression

    rows: list[np.ndarray] = []
    labels: list[str] = []
    for i in range(data_start, len(lines)):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            continue
        lineno = i + 1
        fields = line.split(":")
        if has_label:
            labels.append(fields[-1].strip())
            fields = fields[:-1]
            if not labels[-1]:
                raise TSFormatError(f"{source}, line {lineno}: empty label after the last ':'")
        if n_dims is None:
            n_dims = len(fields)
        if len(fields) != n_dims:
            what = f"{n_dims} channels" + (" and a label" if has_label else "")
            raise TSFormatError(
                f"{source}, line {lineno}: expected {what} separated by ':', "
                f"got {len(fields) + has_label} fields"
            )
        channels = [_channel(f, lineno, d) for d, f in enumerate(fields)]
        n_len = {c.size for c in channels}
        if len(n_len) != 1:
            raise TSFormatError(
                f"{source}, line {lineno}: channels have different lengths {sorted(n_len)}; "
                "only equal-length series are supported"
            )
        if length is None:
            length = channels[0].size
        if channels[0].size != length:
            raise TSFormatError(
                f"{source}, line {lineno}: series length {channels[0].size}, expected {length} "
                "(from @seriesLength or the first row)"
            )
        sample = np.stack(channels, axis=1)
        if not missing_ok and np.isnan(sample).any():
            raise TSFormatError(
                f"{source}, line {lineno}: missing value '?' but the header says @missing false"
            )
        rows.append(sample)
    if not rows:
        raise TSFormatError(f"{source}: no data rows after @data")
    if has_class:
        unknown = sorted(set(labels) - set(class_names))
        if unknown:
            raise TSFormatError(
                f"{source}: labels {unknown[:5]} are not declared in @classLabel "
                f"({' '.join(class_names)})"
            )
    if is_regression:
        bad = [s for s in labels if not _is_float(s)]
        if bad:
            raise TSFormatError(f"{source}: regression targets must be numbers, got {bad[0]!r}")
    return TSData(
        problem_name=header.get("problemname", ""),
        X=np.stack(rows),
        labels=tuple(labels),
        class_names=class_names,
        is_regression=is_regression,
        header=header,
    )


def read_ts(path: str | Path) -> TSData:
    """Read and parse a ``.ts`` file (comments may hold non-UTF-8 bytes: they are replaced)."""
    path = Path(path)
    text = path.read_bytes().decode("utf-8", errors="replace")
    return parse_ts(text, source=str(path.name))
