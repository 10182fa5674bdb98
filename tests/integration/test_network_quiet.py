"""Shortlist stays quiet on the network, checked where traffic happens: in the system calls of real processes.

pytest-socket (tests/conftest.py) only sees Python's ``socket`` module; native code (onnxruntime's telemetry
uploader, a C resolver) goes past it. So here representative commands run as subprocesses under
``strace -f`` (every thread and child process), and every ``connect``/``sendto``/``sendmsg``/``sendmmsg`` they
make is parsed: an address outside 127.0.0.0/8 and ::1 fails the test, and so does any DNS query (port 53, even to
a loopback resolver: a lookup is how a telemetry upload starts). Unix and netlink sockets are fine.

Covered: ``import shortlist`` (with the CLI, server and adapters), encoding with every backend, ``shortlist
export``, ``index`` + ``query`` + ``eval`` + ``similarity`` on a tiny corpus, ``demo`` (a few documents),
``shortlist serve`` answering requests on 127.0.0.1, and processes that idle >= 30 s after their first query
(onnxruntime 1.32's telemetry looked up its host about 9 s after a session was ready, then every 5-9 s).

The commands run in parallel (most of the time is the idling); the whole module takes about a minute and a half.
Run it alone with ``pytest tests/integration/test_network_quiet.py``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shortlist import _offline

STRACE = shutil.which("strace")
#: The calls that put a packet on a socket towards an address (``sendto``/``sendmsg`` name it when unconnected).
SYSCALLS = "connect,sendto,sendmsg,sendmmsg"
#: Seconds each idling process sleeps after its first query (>= 30: telemetry fired ~9 s in, then every 5-9 s).
IDLE_SECONDS = 30.0
#: Families that never leave the machine.
LOCAL_FAMILIES = frozenset({"AF_UNIX", "AF_LOCAL", "AF_NETLINK", "AF_UNSPEC"})
#: Settings a developer's shell or CI may hold that would hide what a user's process does by default.
UNSET = (*_offline.ENV_DEFAULTS, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DO_NOT_TRACK")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

_SOCKADDR = re.compile(r"\{sa_family=(AF_\w+)([^{}]*)\}")
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_ADDR4 = re.compile(r'sin_addr=inet_addr\("([^"]+)"\)')
_ADDR6 = re.compile(r'inet_pton\(AF_INET6, "([^"]+)"')
_CALL = re.compile(r"\b(connect|sendto|sendmsg|sendmmsg)\(")


def offending(line: str) -> str | None:
    """Why one strace line is network traffic that leaves the machine or looks a name up (``None``: it is not)."""
    if not _CALL.search(line):
        return None
    for family, body in _SOCKADDR.findall(line):
        if family in LOCAL_FAMILIES:
            continue
        if family not in ("AF_INET", "AF_INET6"):
            return f"{family} socket"
        port = _PORT.search(body)
        addr = (_ADDR4 if family == "AF_INET" else _ADDR6).search(body)
        if port is None or addr is None:
            return f"unparsed {family} address"
        if int(port.group(1)) == 53:
            return f"DNS query to {addr.group(1)}"
        ip = ipaddress.ip_address(addr.group(1))
        mapped = getattr(ip, "ipv4_mapped", None)
        if not (mapped or ip).is_loopback:
            return f"connection to {ip} port {port.group(1)}"
    return None


def violations(trace: str) -> list[str]:
    """The offending lines of a whole ``strace -f`` output, each prefixed with the reason."""
    found = []
    for line in trace.splitlines():
        reason = offending(line)
        if reason is not None:
            found.append(f"{reason}: {line.strip()[:220]}")
    return found


_LINE = re.compile(r"^(\d+)\s+(connect|sendto)\((\d+), ")
_PAYLOAD = re.compile(r'^\d+\s+sendto\(\d+, "((?:[^"\\]|\\.)*)"')


def dns_names(trace: str) -> list[str]:
    """The host names a trace's DNS queries asked for (read from what was sent on sockets connected to port 53)."""
    resolver_sockets: set[tuple[str, str]] = set()
    names: list[str] = []
    for line in trace.splitlines():
        call = _LINE.match(line)
        if call is None:
            continue
        key = (call.group(1), call.group(3))
        if call.group(2) == "connect":
            (resolver_sockets.add if "htons(53)" in line else resolver_sockets.discard)(key)
        elif key in resolver_sockets and (payload := _PAYLOAD.match(line)) is not None:
            name = _question(payload.group(1).encode("latin-1").decode("unicode_escape").encode("latin-1"))
            if name and name not in names:
                names.append(name)
    return names


def _question(packet: bytes) -> str | None:
    """The name in a DNS query's question section (``None`` if the packet is cut short)."""
    labels, i = [], 12  # after the header
    while i < len(packet) and packet[i] != 0:
        end = i + 1 + packet[i]
        if end > len(packet):
            return None
        labels.append(packet[i + 1 : end].decode("ascii", "replace"))
        i = end
    return ".".join(labels) if i < len(packet) else None


# ---------------------------------------------------------------------------------------------- the parser
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('5517 connect(12, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0',
         "DNS query to 10.255.255.53"),
        ('9 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
         "DNS query to 127.0.0.53"),
        ('9 connect(5, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("13.69.109.131")}, 16 '
         "<unfinished ...>", "connection to 13.69.109.131 port 443"),
        ('9 sendto(7, "\\222\\255\\1\\0", 50, MSG_NOSIGNAL, {sa_family=AF_INET6, sin6_port=htons(443), '
         'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2a01:111:f100::1", &sin6_addr), sin6_scope_id=0}, 28) = 50',
         "connection to 2a01:111:f100::1 port 443"),
        ('9 sendmsg(4, {msg_name={sa_family=AF_INET, sin_port=htons(123), sin_addr=inet_addr("192.168.1.1")}, '
         "msg_namelen=16, msg_iov=[]}, 0) = 0", "connection to 192.168.1.1 port 123"),
        ("9 connect(4, {sa_family=AF_PACKET, sll_protocol=htons(ETH_P_ALL)}, 20) = 0", "AF_PACKET socket"),
        ('9 connect(6, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0', None),
        ('9 connect(6, {sa_family=AF_INET6, sin6_port=htons(8080), sin6_flowinfo=htonl(0), '
         'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0', None),
        ('9 connect(6, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), '
         'inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr), sin6_scope_id=0}, 28) = 0', None),
        ('9 connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT', None),
        ("9 sendto(3, {{len=20, type=RTM_GETADDR, flags=NLM_F_REQUEST}, {ifa_family=AF_UNSPEC}}, 20, 0, "
         "{sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 20", None),
        ('9 sendto(7, "GET / HTTP/1.1", 14, 0, NULL, 0) = 14', None),
        ("9 +++ exited with 0 +++", None),
    ],
)  # fmt: skip
def test_the_trace_parser(line: str, reason: str | None) -> None:
    assert offending(line) == reason


def test_dns_names_are_read_from_the_queries() -> None:
    # onnxruntime 1.32's telemetry as `strace -s 96` printed it: two threads asking for AAAA and A.
    question = r"\0\0\1\0\0\0\0\0\0\6mobile\6events\4data\tmicrosoft\3com\0\0"
    resolver = '{sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16'
    trace = "\n".join([
        f"12410 connect(8, {resolver}) = 0",
        rf'12410 sendto(8, "\220\262\1{question}\34\0\1", 50, MSG_NOSIGNAL, NULL, 0 <unfinished ...>',
        f"12411 connect(9, {resolver} <unfinished ...>",
        rf'12411 sendto(9, "*\201\1{question}\1\0\1", 50, MSG_NOSIGNAL, NULL, 0) = 50',
        '12412 connect(9, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        r'12412 sendto(9, "\6GET /", 6, 0, NULL, 0) = 6',
    ])  # fmt: skip
    assert dns_names(trace) == ["mobile.events.data.microsoft.com"]
    assert dns_names(trace.replace("htons(53)", "htons(5353)")) == []


# ---------------------------------------------------------------------------------------------- running things
@dataclass
class Traced:
    """One command that ran under strace."""

    name: str
    returncode: int
    output: str
    violations: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def _strace_usable() -> str | None:
    """Why strace cannot trace here (``None``: it can)."""
    if STRACE is None:
        if os.environ.get("CI"):  # `make test` installs it; in CI a missing strace is a failure, not a skip
            pytest.fail("Debian's strace is missing: `make test` installs it (apt-get install -y strace)")
        return "strace is not installed (`make test` installs Debian's strace when it runs as root)"
    probe = subprocess.run([STRACE, "-f", "-e", "trace=connect", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"strace cannot trace processes here (ptrace not permitted?): {probe.stderr.strip()[:200]}"
    return None


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET and k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["SHORTLIST_HOME"] = str(root / "shortlist-home")
    # A fresh home: where telemetry keeps its device id and queued events (onnxruntime: ~/.cache/Microsoft).
    env["HOME"] = str(root / "user")
    env.pop("XDG_CACHE_HOME", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Tracer:
    """Starts commands under ``strace -f`` with a clean environment and collects what they sent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = _env(root)
        (root / "user").mkdir()

    def argv(self, name: str, command: list[str]) -> list[str]:
        assert STRACE is not None
        log = self.root / f"{name}.strace"
        return [STRACE, "-f", "-qq", "--seccomp-bpf", "-s", "96", "-e", f"trace={SYSCALLS}", "-o", str(log), *command]

    def finish(self, name: str, proc: subprocess.Popen[str], started: float, timeout: float) -> Traced:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # strace and every process it traces (killing strace alone detaches)
            output, _ = proc.communicate()
            output += f"\n[killed after {timeout:.0f} s]"
        trace = (self.root / f"{name}.strace").read_text(encoding="utf-8", errors="replace")
        seconds = time.monotonic() - started
        return Traced(name, proc.returncode, output[-3000:], violations(trace), seconds, names=dns_names(trace))

    def start(self, name: str, command: list[str]) -> subprocess.Popen[str]:
        """``command`` under strace, in a session of its own (so a timeout can kill strace and its tracees)."""
        return subprocess.Popen(
            self.argv(name, command), env=self.env, cwd=self.root, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip

    def run(self, name: str, command: list[str], timeout: float = 240) -> Traced:
        started = time.monotonic()
        return self.finish(name, self.start(name, command), started, timeout)

    def chain(self, *steps: tuple[str, list[str]]) -> list[Traced]:
        """Run commands one after the other (each needs the previous one's files); stop at the first failure."""
        done = []
        for name, command in steps:
            done.append(self.run(name, command))
            if done[-1].returncode != 0:
                break
        return done


CLI = [sys.executable, "-m", "shortlist"]

IMPORTS = """
import shortlist, shortlist.cli, shortlist.server, shortlist.langchain, shortlist.llama_index
from shortlist import Prefilter, ChunkStore
print("imported", shortlist.__version__)
"""

#: Encode with one backend, then idle: the process holds its session (and ORT's or torch's threads) meanwhile.
ENCODE_AND_IDLE = """
import sys, time
from shortlist import Encoder
enc = Encoder.shared(backend=sys.argv[1])
vectors = enc.embed_documents(["Cats sleep most of the day.", "Magma erupts as lava."])
query = enc.embed_query("Why do cats sleep so much?")
print(enc.backend_name, vectors.shape, round(float(vectors[0] @ query), 3), flush=True)
time.sleep(float(sys.argv[2]))
print("idled", sys.argv[2], flush=True)
"""

DOCS = {
    "cats.txt": "Cats sleep for most of the day. A cat purrs when it is content and hunts mice at night.",
    "python.md": "# Exceptions\n\nTo catch several exceptions in one except clause, list them in a tuple.",
    "market.txt": "The stock market fell sharply on Monday as interest rates rose and investors sold bonds.",
}
BEIR = [
    ("d1", "Photosynthesis", "Plants turn sunlight, water and carbon dioxide into glucose and oxygen."),
    ("d2", "Volcanoes", "Magma rises through the crust and erupts as lava, ash and gas."),
    ("d3", "Tides", "The gravity of the moon pulls the oceans and causes high and low tides."),
]
QUERIES = [("q1", "How do plants make sugar from light?", "d1"), ("q2", "Why does the sea rise and fall?", "d3")]


def _write_corpora(root: Path) -> tuple[Path, Path]:
    notes = root / "notes"
    notes.mkdir()
    for name, text in DOCS.items():
        (notes / name).write_text(text, encoding="utf-8")
    beir = root / "beir"
    (beir / "qrels").mkdir(parents=True)
    lines = (json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in BEIR)
    (beir / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (beir / "queries.jsonl").write_text("\n".join(json.dumps({"_id": q, "text": t}) for q, t, _ in QUERIES) + "\n")
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, _, d in QUERIES)
    )
    return notes, beir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http(url: str, body: dict[str, object] | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return int(response.status), bytes(response.read())


def _tracee_pid(strace_pid: int) -> int | None:
    try:
        children = Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _serve(tracer: Tracer, db: Path, collection: str) -> Traced:
    """``shortlist serve`` under strace: wait for /health, answer requests of each kind, idle, stop with SIGINT."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [*CLI, "serve", "--port", str(port), "--db", str(db), "-c", collection, "--log-level", "warning"]
    started = time.monotonic()
    proc = tracer.start("serve", command)
    notes = []
    try:
        deadline = time.monotonic() + 150
        while True:
            try:
                if _http(base + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                notes.append("the server did not answer /health")
                break
            time.sleep(0.25)
        if not notes:
            requests: list[tuple[str, dict[str, object] | None]] = [
                ("/api/embed", {"model": "all-minilm", "input": ["hello", "world"]}),
                ("/v1/embeddings", {"model": "all-minilm", "input": "hello"}),
                ("/api/similarity", {"text1": "a cat sleeps", "text2": "a kitten naps"}),
                ("/api/search", {"query": "why do cats sleep?", "k": 2}),
                ("/", None),
                ("/docs", None),
                ("/openapi.json", None),
            ]
            for path, body in requests:
                status, _ = _http(base + path, body)
                notes.append(f"{path} {status}")
            time.sleep(IDLE_SECONDS)  # a long-lived server after its first queries
            notes.append(f"idled {IDLE_SECONDS:.0f} s")
    finally:
        pid = _tracee_pid(proc.pid)
        if pid is not None:
            os.kill(pid, signal.SIGINT)
    result = tracer.finish("serve", proc, started, timeout=60)
    result.notes = notes
    return result


# ---------------------------------------------------------------------------------------------- the test
def test_no_process_sends_anything_off_the_machine(tmp_path: Path) -> None:
    """Every command's system calls reach only loopback and Unix sockets, and none looks a name up."""
    reason = _strace_usable()
    if reason is not None:
        pytest.skip(reason)
    tracer = Tracer(tmp_path)
    notes, beir = _write_corpora(tmp_path)
    db = tmp_path / "db"
    idle = str(IDLE_SECONDS)
    results: list[Traced] = []

    def jobs(
        pool: ThreadPoolExecutor, *calls: Callable[[], Traced | list[Traced]]
    ) -> list[Future[Traced | list[Traced]]]:
        return [pool.submit(call) for call in calls]

    def cli_and_serve() -> list[Traced]:
        done = [tracer.run("index", [*CLI, "index", str(notes), "-c", "notes", "--db", str(db)])]
        if done[0].returncode != 0:
            return done
        # One process per embedded folder (Chroma's rule, enforced by shortlist): the query, which runs while the
        # server holds `db`, reads a copy of it made once the index process had exited.
        query_db = tmp_path / "query-db"
        shutil.copytree(db, query_db)
        with ThreadPoolExecutor(max_workers=1) as side:
            server = side.submit(_serve, tracer, db, "notes")
            done += tracer.chain(
                ("query", [*CLI, "query", "why do cats sleep?", "-c", "notes", "--db", str(query_db), "-k", "2"]),
                ("similarity", [*CLI, "similarity", "a cat sleeps", "a kitten naps"]),
            )
            done.append(server.result())
        return done

    # The traced `export` first, beside the processes that need no ONNX file; then everything that runs the onnx
    # backends (they would otherwise export on first use, each waiting for the other's lock). Most time is idling.
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = jobs(
            pool,
            lambda: tracer.run("export", [*CLI, "export", "--json"]),
            lambda: tracer.run("import", [sys.executable, "-c", IMPORTS]),
            lambda: tracer.run("encode-torch-idle", [sys.executable, "-c", ENCODE_AND_IDLE, "torch", idle]),
        )
        first[0].result()
        second = jobs(
            pool,
            lambda: tracer.run("encode-onnx-idle", [sys.executable, "-c", ENCODE_AND_IDLE, "onnx", idle]),
            lambda: tracer.run("encode-onnx-int8-idle", [sys.executable, "-c", ENCODE_AND_IDLE, "onnx-int8", idle]),
            cli_and_serve,
            lambda: tracer.run("eval", [*CLI, "eval", str(beir), "--db", str(tmp_path / "eval-db"), "-k", "1,3"]),
            lambda: tracer.run("demo", [*CLI, "demo", "--db", str(tmp_path / "demo-db"), "--limit", "5", "-k", "1"]),
        )
        for future in (*first, *second):
            value = future.result()
            results.extend(value if isinstance(value, list) else [value])

    for r in results:  # shown with -s, and in the report of a failure
        print(f"{r.name:<24} {r.seconds:6.1f} s  exit {r.returncode}  {len(r.violations)} calls off the machine")
    names = {r.name for r in results}
    expected = {"export", "import", "encode-torch-idle", "encode-onnx-idle", "encode-onnx-int8-idle", "index",
                "query", "similarity", "eval", "demo", "serve"}  # fmt: skip
    problems = [f"did not run: {sorted(expected - names)}"] if expected - names else []
    for r in results:
        idled = not r.name.endswith("-idle") or (f"idled {idle}" in r.output and r.seconds >= IDLE_SECONDS)
        if r.returncode != 0 or not idled or (r.name == "serve" and "idle" not in " ".join(r.notes)):
            problems.append(f"{r.name} exited {r.returncode} after {r.seconds:.0f} s {r.notes}:\n{r.output}")
        if r.violations:
            lines = "\n    ".join(r.violations[:8])
            looked_up = f", looked up {', '.join(r.names)}" if r.names else ""
            problems.append(f"{r.name}: {len(r.violations)} calls off the machine{looked_up} (strace -f):\n    {lines}")
    kept = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "user").rglob("*") if p.is_file())
    if kept:
        problems.append(f"files written under $HOME: {kept}")
    assert not problems, "\n\n".join(problems)
