"""The official HAPI FHIR validator (HAPI 8.8.0, org.hl7.fhir.validation 6.7.9, FHIR R4 4.0.1)
as one long-lived JVM that validates resources in batches.

The first use asks Maven to copy the jars named in pom.xml from Maven Central into
${XDG_CACHE_HOME:-~/.cache}/medmec/bin/hapi-fhir-validator-<hash of pom.xml>/ (beside the
Go binaries) and compiles ValidateFhir.java there; later runs start in seconds and need no
network. The checkout gets nothing written into it. Run by hand:

    python tests/nursing/hapi/hapi_validator.py resource.json ...
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
POM, SOURCE = HERE / "pom.xml", HERE / "ValidateFhir.java"
# Belt and braces for "offline": every java.net socket goes through a SOCKS proxy on a closed
# loopback port, so a validator that tried to reach a terminology server would fail at once.
OFFLINE = ["-DsocksProxyHost=127.0.0.1", "-DsocksProxyPort=9", "-Dhttp.proxyHost=127.0.0.1",
           "-Dhttp.proxyPort=9", "-Dhttps.proxyHost=127.0.0.1", "-Dhttps.proxyPort=9"]


class ValidatorSetupError(RuntimeError):
    """Java or Maven is missing, or the jars could not be fetched; the message says which."""


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "medmec"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ValidatorSetupError(f"{what} failed ({' '.join(cmd[:2])} ...):\n"
                                  f"{(done.stdout + done.stderr)[-3000:]}")


def ensure() -> Path:
    """The cache folder with lib/ (the jars) and classes-<hash>/ (ValidateFhir), made if missing."""
    for tool, package in (("mvn", "maven"), ("javac", "default-jdk-headless")):
        if shutil.which(tool) is None:
            raise ValidatorSetupError(f"{tool} is not on PATH: install it (Debian: apt-get install "
                                      f"{package}; `make test` runs e2e/system-deps.sh for this)")
    home = cache_root() / "bin" / f"hapi-fhir-validator-{_digest(POM)}"
    classes = home / f"classes-{_digest(SOURCE)}"
    if classes.is_dir():
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(cache_root() / "hapi-fhir-validator.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions at once fetch once
        if not (home / "lib").is_dir():
            tmp = Path(tempfile.mkdtemp(prefix=".hapi-fhir-validator-", dir=home.parent))
            try:
                shutil.copy(POM, tmp / "pom.xml")
                _run(["mvn", "-B", "-q", "-f", str(tmp / "pom.xml"),
                      f"-Dmaven.repo.local={tmp / 'm2'}", "dependency:copy-dependencies",
                      f"-DoutputDirectory={tmp / 'lib'}", "-DincludeScope=runtime"],
                     "fetching the HAPI FHIR validator from Maven Central")
                home.mkdir(exist_ok=True)
                (tmp / "lib").rename(home / "lib")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        if not classes.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix=".classes-", dir=home))
            try:
                _run(["javac", "-d", str(tmp), "-cp", f"{home / 'lib'}/*", str(SOURCE)],
                     "compiling ValidateFhir.java")
                tmp.rename(classes)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return home


class HapiValidator:
    """validate([resource, ...]) -> one list of issues per resource, each issue a dict with
    severity (fatal|error|warning|information), location, message and id (the validator's
    message id). load([...]) adds conformance resources the validator should resolve."""

    def __init__(self, stderr_path: Path):
        home = ensure()
        classpath = f"{home / f'classes-{_digest(SOURCE)}'}:{home / 'lib'}/*"
        self._stderr = open(stderr_path, "w")
        # the validator core keeps a FHIR package cache in ~/.fhir: keep it in our cache
        home_dir = f"-Duser.home={home / 'jvm-home'}"
        self.proc = subprocess.Popen(["java", *OFFLINE, home_dir, "-cp", classpath, "ValidateFhir"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True)
        self._stderr_path = stderr_path
        self._answer()  # {"ready": true}

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise ValidatorSetupError("the validator JVM ended:\n" +
                                      self._stderr_path.read_text()[-3000:])
        return json.loads(line)

    def _ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def load(self, resources: list[dict]) -> None:
        self._ask({"load": resources})

    def validate(self, resources: list[dict]) -> list[list[dict]]:
        return self._ask({"validate": resources})["results"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._stderr.close()


def main(paths: list[str]) -> int:
    resources = [json.loads(Path(p).read_text()) for p in paths]
    validator = HapiValidator(Path(tempfile.mkstemp(suffix=".log")[1]))
    try:
        errors = 0
        for path, issues in zip(paths, validator.validate(resources)):
            for i in issues:
                print(f"{path}: {i['severity']}: {i['location']}: {i['message']}")
                errors += i["severity"] in ("error", "fatal")
        return 1 if errors else 0
    finally:
        validator.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
