"""Benchmark: add 20 links to an issue whose draft already holds 1,000 items.

A compose that adds links splices the new items into the editor's draft. Splicing each item
by parsing the whole draft again made this quadratic (issue 11: 35 s to add 20 links to a
1,000-item issue, against 15 s to compose all 1,000). Now the draft is parsed once and every
new item is spliced in one pass. Prints the time of the full compose of 1,000 links and of
the compose that adds 20 more. Offline summarizer, pages from a local server in a child
process. Measured on the 2-core development machine (load average 4-6 from other jobs):
before, 10.9 s for 1,000 links and 40.7 s to add 20; after, 10.0-11.9 s and 2.5-3.6 s (three
parses of the draft in all: read, splice, check of the result, whatever the number of links). Run: `.venv/bin/python benchmarks/big_issue.py [ITEMS]`.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from digest.compose import ComposeOptions, compose  # noqa: E402
from digest.workspace import Workspace  # noqa: E402
from tests.conftest import article_html  # noqa: E402
from tests.webserver import WebServer  # noqa: E402

ITEMS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
ADDED = 20


def serve(conn: multiprocessing.connection.Connection) -> None:
    """Child process: the page server; answers "stop"."""
    web = WebServer().start()
    web.httpd.socket.listen(256)
    urls = []
    for i in range(ITEMS + ADDED):
        html = article_html(
            f"Article {i}: a page of the big issue",
            [f"Paragraph {j} of article {i} says one more thing about it." for j in range(6)],
        )
        urls.append(web.page(f"/a/{i}", html))
    conn.send(urls)
    conn.recv()
    web.stop()


def main() -> int:
    """Run the benchmark; exit 1 when adding links costs half the full compose or more."""
    conn, child_conn = multiprocessing.Pipe()
    servers = multiprocessing.Process(target=serve, args=(child_conn,), daemon=True)
    servers.start()
    urls = conn.recv()
    root = Path(tempfile.mkdtemp(prefix="digest-bench-big-"))
    try:
        (root / "issues" / "001").mkdir(parents=True)
        (root / "digest.toml").write_text(
            '[newsletter]\nlanguage = "en"\n[fetch]\nallow_private_hosts = true\n'
        )
        links = root / "issues" / "001" / "links.yaml"
        links.write_text("".join(f"- {u}\n" for u in urls[:ITEMS]))
        options = ComposeOptions(offline=True)
        started = time.perf_counter()
        first = compose(
            Workspace.load(explicit=root), Workspace.load(explicit=root).issue("001"), options
        )
        full = time.perf_counter() - started
        links.write_text("".join(f"- {u}\n" for u in urls))
        started = time.perf_counter()
        second = compose(
            Workspace.load(explicit=root), Workspace.load(explicit=root).issue("001"), options
        )
        added = time.perf_counter() - started
        draft = (root / "issues" / "001" / "draft.md").read_text(encoding="utf-8")
    finally:
        conn.send("stop")
        servers.join(timeout=10)
        shutil.rmtree(root, ignore_errors=True)

    ok_first = sum(1 for link in first.report.links if link.status == "ok")
    ok_second = sum(1 for link in second.report.links if link.status == "ok")
    items = draft.count("\n## Article ")
    print(f"compose {ITEMS} links into an empty issue: {full:6.2f} s ({ok_first} ok)")
    print(
        f"add {ADDED} links to the {ITEMS}-item draft: {added:6.2f} s ({ok_second} ok, {items} items)"
    )
    passed = ok_first == ITEMS and ok_second == ADDED and items == ITEMS + ADDED
    passed = passed and added < full / 2
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
