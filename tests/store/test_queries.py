"""The SQL files: each one a query name mypy knows, each with a header naming its parameters."""

from __future__ import annotations

import re
import typing

from lineage.resources import shipped_dir
from lineage.store import QueryName

FILES = {p.stem: p for p in shipped_dir("queries").glob("*.sql")}


def test_every_query_name_has_its_file_and_every_file_a_name() -> None:
    """``QueryName`` lists exactly the query files (the macros file apart), so a typo fails type-checking."""
    assert set(typing.get_args(QueryName)) == set(FILES) - {"_macros"}


def test_every_query_file_names_the_parameters_it_binds() -> None:
    """Each file has a ``-- Parameters:`` header, and every ``$name`` the SQL binds is named in it."""
    for name, path in FILES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("-- Parameters:")]
        assert len(starts) == 1, f"{name}.sql has no single '-- Parameters:' line"
        header = []  # the Parameters line and the comment lines continuing it
        for line in lines[starts[0] :]:
            if not line.startswith("--"):
                break
            header.append(line)
        sql = "\n".join(line.split("--")[0] for line in lines)
        for param in set(re.findall(r"\$(\w+)", sql)):
            assert f"${param}" in " ".join(header), f"{name}.sql binds ${param} but its header does not name it"
