"""Uploads kept in an S3-compatible store: moto's standalone server on loopback speaks the S3
protocol as MinIO and AWS do."""

import os
import subprocess
import sys

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.helpers import documents
from tests.helpers.processes import ROOT
from tests.helpers.uploads import REPORT, chips, logged_in, upload
from uploads import background
from uploads.models import UploadedFile
from uploads.services import bucket_create_missing

pytestmark = [pytest.mark.django_db(transaction=True)]

KEYS = {"access_key": "minio-test", "secret_key": "minio-secret"}


@pytest.fixture(scope="session")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(settings, s3_endpoint):
    """A fresh bucket for the test, with the app's storage pointed at it."""
    name = f"kimichat-{os.urandom(4).hex()}"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "default_acl": "private",
                "addressing_style": "path",
                "signature_version": "s3v4",
                **KEYS,
            },
        },
    }
    assert bucket_create_missing() is True  # what `manage.py repair` does on a fresh store
    assert bucket_create_missing() is False
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
    )
    return client, name


async def test_uploads_are_stored_read_downloaded_and_deleted_in_the_bucket(alice, bob, bucket):
    s3, name = bucket
    client = await logged_in(alice)
    report = documents.docx_bytes()
    response = await upload(client, "report.docx", report)
    await background.idle()
    [(pk, _name)] = chips(response)
    file = await UploadedFile.objects.aget(pk=pk)

    [stored] = s3.list_objects_v2(Bucket=name)["Contents"]
    assert stored["Key"] == file.file.name and stored["Key"].startswith(f"uploads/{alice.pk}/")
    assert "report" not in stored["Key"]  # the user's name for it stays in the database
    grants = s3.get_object_acl(Bucket=name, Key=stored["Key"])["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # private: the owner only

    # Read from the bucket, not from a local copy of the upload.
    assert file.status == "ready" and REPORT in file.text

    download = await client.get(f"/files/{file.pk}/download/")
    assert b"".join(download.streaming_content) == report
    assert (await (await logged_in(bob)).get(f"/files/{file.pk}/download/")).status_code == 404

    await client.post(f"/files/{file.pk}/delete/")
    assert s3.list_objects_v2(Bucket=name).get("KeyCount") == 0


def test_s3_settings_switch_the_storage_on():
    env = {
        **os.environ,
        "SECRET_KEY": "x",
        "S3_BUCKET": "files",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "S3_ACCESS_KEY_ID": "k",
        "S3_SECRET_ACCESS_KEY": "s",
    }
    code = "from django.conf import settings; print(settings.STORAGES['default']['BACKEND'])"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "storages.backends.s3.S3Storage", result.stderr
