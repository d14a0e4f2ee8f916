"""The loopback OpenID Connect provider (tests/oidc_provider) as a context manager."""

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers.mail import _free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "kimichat"
CLIENT_SECRET = "kimichat-secret"


class Provider:
    def __init__(self, tmp: Path, users: list[dict], redirect_uris: list[str]) -> None:
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/o"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.env = {
            **os.environ,
            "OIDC_PROVIDER_DB": str(tmp / f"provider-{self.port}.sqlite3"),
            "OIDC_PROVIDER_KEY": pem,
        }
        self.setup = {
            "users": users,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": redirect_uris,
        }
        self.log = tmp / f"provider-{self.port}.log"

    def settings(self, name: str = "Acme ID") -> dict[str, str]:
        """KimiChat's environment for this provider."""
        return {
            "OIDC_NAME": name,
            "OIDC_SERVER_URL": self.issuer,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        }

    def __enter__(self) -> "Provider":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.oidc_provider", str(self.port), json.dumps(self.setup)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.log.open("w"),
            text=True,
        )
        # Wait for it to say it listens, not for a fixed time.
        line = self.process.stdout.readline() if self.process.stdout else ""
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError("the OIDC provider did not start:\n" + self.log.read_text())
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(10)
