"""The Salesforce emulator at scale: generate an org, load it from its history file, query it.

    python benchmarks/emulator_scale.py                      # 1,000,000 users, Users only
    python benchmarks/emulator_scale.py --users 200000 --with-sales
    python benchmarks/emulator_scale.py --history org.jsonl  # an existing history file

Each step runs the real command line in its own process, as an operator would:
``sf-lakehouse generate-org`` (timed), then ``sf-lakehouse emulator --history`` (timed until it
serves, i.e. writes its env file; its peak and current RSS read from /proc), then queries over
HTTPS with simple-salesforce: COUNT(), a filtered and ordered page, every record paged through
``nextRecordsUrl`` (records/s), and a Bulk 2.0 job read page by page (records/s).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simple_salesforce import Salesforce

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from sf_lakehouse.emulator.testing import redirecting_session  # noqa: E402


def _rss(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process, in GiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    kib = [int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")]
    return kib[0] / 2**20, kib[1] / 2**20


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sf_lakehouse.cli", *args]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def generate(path: Path, users: int, with_sales: bool) -> None:
    command = _cli("generate-org", "--users", str(users), "--output", str(path))
    if not with_sales:
        command += ["--accounts", "0", "--opportunities", "0"]
    began = time.monotonic()
    before = os.times()
    subprocess.run(command, check=True, env=_environment(), cwd=REPO_ROOT)
    elapsed = time.monotonic() - began
    after = os.times()
    cpu = after.children_user + after.children_system - before.children_user
    cpu -= before.children_system
    size = path.stat().st_size / 2**30
    print(f"generate-org: {elapsed:.1f} s ({cpu:.1f} CPU s), {size:.2f} GiB of history")


def serve(path: Path, workdir: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    env_file = workdir / "emulator.env"
    command = _cli(
        "emulator",
        "--history",
        str(path),
        "--env-file",
        str(env_file),
        "--workdir",
        str(workdir / "tls"),
        "--now",
        "2026-03-08T00:00:00Z",
    )
    began = time.monotonic()
    process = subprocess.Popen(command, env=_environment(), cwd=REPO_ROOT, text=True)
    peak = 0.0
    while not env_file.exists():
        if process.poll() is not None:
            raise SystemExit(f"the emulator exited with {process.returncode}")
        peak = max(peak, _rss(process.pid)[1])
        time.sleep(0.05)
    elapsed = time.monotonic() - began
    current, peak = _rss(process.pid)
    cpu = _cpu(process.pid)
    print(
        f"load and serve: {elapsed:.1f} s ({cpu:.1f} CPU s); "
        f"RSS {current:.2f} GiB, peak {peak:.2f} GiB"
    )
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    return process, env


def query(env: dict[str, str], process: subprocess.Popen) -> None:
    sf = Salesforce(
        username=env["SF_USERNAME"],
        password=env["SF_PASSWORD"],
        security_token=env["SF_SECURITY_TOKEN"],
        session=redirecting_session(env["SF_LOGIN_URL"], Path(env["SF_CA_BUNDLE"])),
        version=env["SF_API_VERSION"],
    )

    def timed(label: str, function, count_of=None):  # type: ignore[no-untyped-def]
        began = time.monotonic()
        result = function()
        elapsed = time.monotonic() - began
        count = count_of(result) if count_of else None
        rate = f", {count / elapsed:,.0f} records/s ({count:,} records)" if count else ""
        print(f"{label}: {elapsed:.2f} s{rate}")
        return result

    users = timed("SELECT COUNT() FROM User", lambda: sf.query("SELECT COUNT() FROM User"))
    total = users["totalSize"]
    timed(
        "incremental page (WHERE SystemModstamp >= day 5 ORDER BY SystemModstamp, Id)",
        lambda: sf.query(
            "SELECT Id, Division, Audit_Phase__c, SystemModstamp FROM User WHERE "
            "SystemModstamp >= 2026-03-06T08:00:00Z ORDER BY SystemModstamp, Id"
        ),
        lambda r: len(r["records"]),
    )
    timed(
        "REST query + every nextRecordsUrl page (4 fields)",
        lambda: sf.query_all("SELECT Id, Username, Division, SystemModstamp FROM User"),
        lambda r: len(r["records"]),
    )
    timed(
        "Bulk 2.0 job, 100,000-record CSV pages (4 fields)",
        lambda: [
            page
            for page in sf.bulk2.User.query(
                "SELECT Id, Username, Division, SystemModstamp FROM User",
                max_records=100_000,
                wait=0,
            )
        ],
        lambda pages: sum(page.count("\n") - 1 for page in pages),
    )
    current, peak = _rss(process.pid)
    print(f"after the queries: RSS {current:.2f} GiB, peak {peak:.2f} GiB ({total:,} users)")
    load = os.getloadavg()[0]
    print(f"machine load average while measuring: {load:.1f} on {os.cpu_count()} CPUs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--with-sales", action="store_true", help="Accounts and Opportunities too")
    parser.add_argument("--history", type=Path, help="use this history file, do not generate")
    parser.add_argument("--workdir", type=Path, help="where to write (default: a temporary dir)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="emulator-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    history = args.history or workdir / "org.jsonl"
    if args.history is None:
        generate(history, args.users, args.with_sales)
    process, env = serve(history, workdir)
    try:
        query(env, process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
