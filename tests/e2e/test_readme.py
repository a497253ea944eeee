"""README's examples run as written. Every fenced block right after the line
`<!-- runs-as-written -->` is run, in README order, against one fresh server
(the conftest fixture: a free port, a temporary data directory), from the
repository root: shell blocks with `bash -e -o pipefail`, the Python block
with /usr/bin/python3 twice (a second run is a replay). Before it runs, a
block is rewritten only where the README names the machine it runs on:
127.0.0.1:50051 becomes the test server's address (`yj call` gets `--addr`,
its default being that address), `var` the test server's data directory,
`bin/yj` the yj next to $YJ_BIN, and a relative `--out FILE` a file in a
temporary directory (so nothing is written into the repository). Where a
block states what it prints, `# prints: TEXT` (first run) and
`# run again, prints: TEXT` (second run) are exact lines of its output
(stdout and stderr), in that order; a block that exits non-zero fails."""
import os
import re
import subprocess
import tempfile

import pytest

from conftest import ROOT, YJ

README = os.path.join(ROOT, "README.md")
MARK = "<!-- runs-as-written -->"
PY = "/usr/bin/python3"


def marked_blocks(text):
    """[(line number of the fence, info string, body)] of the blocks right after MARK."""
    lines = text.split("\n")
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        fence = lines[i + 1] if i + 1 < len(lines) else ""
        assert fence.startswith("```"), "README line %d: %s is not right before a fence" % (i + 1, MARK)
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, "README line %d: the block never closes" % (i + 2)
        blocks.append((i + 2, fence[3:].strip(), "\n".join(lines[i + 2:end]) + "\n"))
    return blocks


def stated(body, prefix):
    """The lines a block says it prints: `# <prefix>: TEXT`, in order."""
    return [m.group(1).strip() for m in re.finditer(r"^\s*# %s: (.*)$" % re.escape(prefix), body, re.M)]


def rewrite(body, addr, data_dir, out_dir):
    """The block as it runs against the test server (see the module's comment)."""
    body = body.replace("127.0.0.1:50051", addr)
    body = re.sub(r"(?<![\w/.])bin/yj call\b", lambda m: "%s call --addr %s" % (YJ, addr), body)
    body = re.sub(r"(?<![\w/.])bin/yj\b", lambda m: YJ, body)
    body = re.sub(r"(?<=\s)var(?=\s|/|$)", lambda m: data_dir, body, flags=re.M)
    return re.sub(r"--out (?!/)(\S+)", lambda m: "--out " + os.path.join(out_dir, m.group(1)), body)


def run(lang, body):
    """Runs a rewritten block from the repository root; (exit code, output)."""
    if lang == "python":
        args, stdin = [PY, "-"], body
    else:
        args, stdin = ["bash", "-e", "-o", "pipefail", "-s"], body
    out = subprocess.run(args, input=stdin, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=120)
    return out.returncode, out.stdout


def check(where, lang, body, prefix, rc, output):
    assert "Sanitizer" not in output and "runtime error:" not in output, output
    assert rc == 0, "%s (%s) exited %d:\n%s\n--- output:\n%s" % (where, lang, rc, body, output)
    got = [line.strip() for line in output.split("\n")]
    pos = 0
    for want in stated(body, prefix):
        assert want in got[pos:], "%s: the README says it prints %r; it printed:\n%s" % (where, want, output)
        pos = got.index(want, pos) + 1


def run_readme(text, server, tmp):
    """Runs every marked block of text in order; returns how many ran."""
    blocks = marked_blocks(text)
    for line, lang, body in blocks:
        assert lang in ("sh", "python"), "README line %d: a marked block is sh or python, not %r" % (line, lang)
        where = "README block at line %d" % line
        code = rewrite(body, server.addr, server.data_dir, tmp)
        runs = [("prints", "first run")] + ([("run again, prints", "second run")] if lang == "python" else [])
        for prefix, which in runs:
            rc, output = run(lang, code)
            check("%s, %s" % (where, which), lang, body, prefix, rc, output)
    return blocks


def test_every_runs_as_written_block_of_the_readme_runs_and_prints_what_it_says(server):
    with open(README, encoding="utf-8") as f:
        text = f.read()
    with tempfile.TemporaryDirectory(prefix="yj-readme-") as tmp:
        blocks = run_readme(text, server, tmp)
        # the Python example, the yj call story, the month files, yj call's flags
        assert [lang for _, lang, _ in blocks] == ["python", "sh", "sh", "sh"], blocks
        assert all(stated(body, "prints") for _, _, body in blocks[:2]), "the first two blocks state their output"
        # the month files were written, with alice's October commission and payout line
        with open(os.path.join(tmp, "2025-10.csv"), encoding="utf-8") as f:
            assert "alice" in f.read()
        with open(os.path.join(tmp, "bank.csv"), encoding="utf-8") as f:
            assert "PB-2025-10,2025-10,alice" in f.read()


BROKEN = [
    # an event refused (yj call exits 3): the block breaks
    """<!-- runs-as-written -->
```sh
bin/yj call yongjin.v1.Ledger/Append '{"events":[{"request_id":"x","event_time_ms":1,"bind":{"member":"b"}}]}'
```
""",
    # the stated output is not what it prints
    """<!-- runs-as-written -->
```sh
bin/yj call yongjin.v1.Query/GetParent '{"member":"nobody-here"}'
# prints: {"referrer":"someone"}
```
""",
    # the Python block prints the first line again when run again
    """<!-- runs-as-written -->
```python
print("one")
# prints: one
# run again, prints: two
```
""",
    # a store path that is not the test server's
    """<!-- runs-as-written -->
```sh
bin/yj report var/nope --month 2025-10
```
""",
]


@pytest.mark.parametrize("text", BROKEN)
def test_a_marked_block_that_breaks_fails_the_test(server, text, tmp_path):
    with pytest.raises(AssertionError):
        run_readme(text, server, str(tmp_path))


def test_a_mark_not_right_before_a_fence_fails():
    with pytest.raises(AssertionError):
        marked_blocks("<!-- runs-as-written -->\n\n```sh\ntrue\n```\n")


def test_the_rewrite_names_the_test_server_and_keeps_files_out_of_the_repository():
    got = rewrite("bin/yj call x '{}'\nbin/yj report var --month 2025-10\n"
                  "bin/yj export var --month 2025-10 --out 2025-10.csv\n"
                  'grpc.insecure_channel("127.0.0.1:50051")  # var\n', "127.0.0.1:9", "/d", "/o")
    assert got == ("%s call --addr 127.0.0.1:9 x '{}'\n%s report /d --month 2025-10\n"
                   "%s export /d --month 2025-10 --out /o/2025-10.csv\n"
                   'grpc.insecure_channel("127.0.0.1:9")  # /d\n') % (YJ, YJ, YJ)


def test_make_and_make_run_build_the_python_modules_the_example_imports():
    # `make` (all) regenerates build/py when a .proto changes: README's example
    # works after plain `make` or `make run`, not only after `make py`
    proto = "proto/yongjin/v1/ledger.proto"
    out = subprocess.run(["make", "-n", "-W", proto, "all"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--python_out=build/py %s" % proto in out.stdout, out.stdout
    run_ = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True)
    assert run_.returncode == 0 and "make --no-print-directory all" in run_.stdout, run_.stdout + run_.stderr
