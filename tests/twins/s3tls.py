"""moto's S3 server behind TLS on a loopback port, for clients that only speak HTTPS (pgBackRest)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
from pathlib import Path
from threading import Thread

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost that is its own CA; (cert, key) paths.

    127.0.0.1 is also a DNS name in it: pgBackRest 2.45 matches the endpoint only against DNS names.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("127.0.0.1"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "s3.crt", folder / "s3.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.chmod(0o644)
    return cert_path, key_path


def _with_close_notify(shutdown_request):
    """End each connection with TLS close_notify: werkzeug answers `Connection: close` and
    pgBackRest (OpenSSL 3) reads until the stream ends, which without it is an error."""
    def shutdown(request):
        with contextlib.suppress(OSError, ValueError):
            request.unwrap()
        shutdown_request(request)
    return shutdown


class S3TlsTwin:
    """`endpoint` is https://127.0.0.1:PORT; `ca_file` the certificate clients should trust."""

    def __init__(self, folder: Path):
        self.ca_file, key_file = self_signed(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self.server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True,
                                  request_handler=MotoRequestHandler, ssl_context=context)
        self.server.shutdown_request = _with_close_notify(self.server.shutdown_request)
        self.port = self.server.server_address[1]
        self.endpoint = f"https://127.0.0.1:{self.port}"

    def start(self) -> S3TlsTwin:
        self.thread = Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # refuse connections from now on, like a server that is down
        self.thread.join()

    def bucket(self, name: str) -> str:
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", verify=str(self.ca_file),
                              aws_access_key_id="test-key", aws_secret_access_key="test-secret")
        client.create_bucket(Bucket=name)
        return name
