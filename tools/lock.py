"""Pin every package that pyproject.toml's dependencies bring: `make lock`."""

import json
import subprocess
import sys
import tomllib

HEADER = "# Generated from pyproject.toml by `make lock`; every package pinned.\n"


def resolve(requirements: list[str]) -> list[str]:
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--dry-run",
            "--ignore-installed",
            "--report",
            "-",
            *requirements,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installs = json.loads(report)["install"]
    return sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in installs)


def main() -> None:
    project = tomllib.load(open("pyproject.toml", "rb"))
    runtime = resolve(project["project"]["dependencies"])
    everything = resolve(project["project"]["dependencies"] + project["dependency-groups"]["dev"])
    with open("requirements.lock", "w") as f:
        f.write(HEADER + "\n".join(runtime) + "\n")
    with open("requirements-dev.lock", "w") as f:
        dev = [r for r in everything if r not in runtime]
        f.write(HEADER + "-r requirements.lock\n" + "\n".join(dev) + "\n")


if __name__ == "__main__":
    main()
