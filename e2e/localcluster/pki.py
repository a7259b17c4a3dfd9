"""Certificates and keys of the local cluster, generated at `up` time.

One CA signs the API server's serving certificate and one client certificate per
identity (the admin, the controller-manager, the scheduler, KWOK; with real nodes also
each kubelet, kube-proxy, CoreDNS and the API server's client to the kubelets) and each
kubelet's serving certificate; a separate key signs service-account tokens. ECDSA P-256
keeps generation fast.
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)

# identity -> (common name, organisations); the names Kubernetes' default RBAC expects
CLIENTS = {
    "admin": ("medmec-admin", ["system:masters"]),
    "controller-manager": ("system:kube-controller-manager", []),
    "scheduler": ("system:kube-scheduler", []),
    # KWOK plays every kubelet: it updates nodes, leases and pod status cluster-wide
    "kwok": ("kwok-controller", ["system:masters"]),
}
# identities of the real nodes' components (nodes themselves: node_client below)
REAL_NODE_CLIENTS = {
    "kube-proxy": ("system:kube-proxy", []),  # bound to system:node-proxier by default RBAC
    "coredns": ("medmec:coredns", []),  # its ClusterRole is created at `up`
    # the API server calling the kubelets (logs, exec, port-forward)
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", []),
}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str, orgs: list[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALIDITY))


def generate(folder: Path, service_ip: str, extra_ips: list[str] = (),
             clients: dict[str, tuple[str, list[str]]] | None = None) -> None:
    """Write ca.{crt,key}, apiserver.{crt,key}, sa.{key,pub} and <identity>.{crt,key}.

    `extra_ips` are more addresses the API server answers on; `clients` the identities
    (default: CLIENTS)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("medmec-local-ca")
    ca = (_builder(ca_name, ca_name, ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write(folder / "ca.key", _pem_key(ca_key))
    (folder / "ca.crt").write_bytes(_pem_cert(ca))

    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local"]
    _issue(folder, ca_key, ca_name, "apiserver", _name("kube-apiserver"),
           ExtendedKeyUsageOID.SERVER_AUTH, _sans(dns, ["127.0.0.1", service_ip, *extra_ips]))
    for identity, (cn, orgs) in (clients or CLIENTS).items():
        _issue(folder, ca_key, ca_name, identity, _name(cn, orgs), ExtendedKeyUsageOID.CLIENT_AUTH)

    sa_key = _key()
    _write(folder / "sa.key", _pem_key(sa_key))
    (folder / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _sans(dns: list[str], ips: list[str]) -> list[x509.GeneralName]:
    return [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]


def _issue(folder: Path, ca_key, ca_name: x509.Name, stem: str, subject: x509.Name, usage,
           sans: list[x509.GeneralName] | None = None) -> None:
    key = _key()
    builder = (_builder(subject, ca_name, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    _write(folder / f"{stem}.key", _pem_key(key))
    (folder / f"{stem}.crt").write_bytes(_pem_cert(builder.sign(ca_key, hashes.SHA256())))


def issue_node(folder: Path, node: str, ip: str) -> None:
    """A kubelet's client certificate (system:node:NAME in system:nodes, what the Node
    authorizer expects) and its serving certificate for its address."""
    ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    ca_name = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes()).subject
    _issue(folder, ca_key, ca_name, f"node-{node}", _name(f"system:node:{node}", ["system:nodes"]),
           ExtendedKeyUsageOID.CLIENT_AUTH)
    _issue(folder, ca_key, ca_name, f"node-{node}-serving", _name(f"system:node:{node}", ["system:nodes"]),
           ExtendedKeyUsageOID.SERVER_AUTH, _sans([node], [ip]))


def write_kubeconfig(cluster_folder: Path, server: str, identity: str) -> Path:
    """A kubeconfig for `identity` (its certificate and key in pki/, embedded), as
    admin.kubeconfig or <identity>.kubeconfig in the cluster's folder."""
    pki_dir = cluster_folder / "pki"

    def b64(name: str) -> str:
        return base64.b64encode((pki_dir / name).read_bytes()).decode()
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "medmec-local",
        "clusters": [{"name": "medmec-local", "cluster": {
            "server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": identity, "user": {"client-certificate-data": b64(f"{identity}.crt"),
                                               "client-key-data": b64(f"{identity}.key")}}],
        "contexts": [{"name": "medmec-local",
                      "context": {"cluster": "medmec-local", "user": identity}}],
    }
    path = cluster_folder / ("admin.kubeconfig" if identity == "admin" else f"{identity}.kubeconfig")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
