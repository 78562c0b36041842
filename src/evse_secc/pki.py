"""Where the SECC's certificates live and whether TLS can work with them.

Precedence of the certificate store (iso15118's ``PKI_PATH``): ``--cert-store`` > the ``PKI_PATH``
environment variable > ``PKI_PATH`` in the ``--secc-config`` file > the package's bundled
``iso15118/shared/pki/`` (which holds only ``create_certs.sh`` and its configs, no certificates).
iso15118 reads the files below ``<store>/iso15118_2/`` on every TLS handshake (also for -20); the
layout is what the package's ``create_certs.sh -v iso-2`` writes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from evse_secc.errors import LaunchError

logger = logging.getLogger(__name__)

#: Files the SECC's TLS server loads (iso15118 security.get_ssl_context(server_side=True)).
TLS_SERVER_FILES = (
    "iso15118_2/certs/cpoCertChain.pem",
    "iso15118_2/private_keys/seccLeaf.key",
    "iso15118_2/private_keys/seccLeafPassword.txt",
)
#: With TLS 1.3 the SECC also verifies the EV's certificate against the OEM root (mutual TLS).
TLS_1_3_EXTRA_FILES = ("iso15118_2/certs/oemRootCACert.pem",)


def missing_tls_files(cert_store: Path, tls_1_3: bool) -> list[str]:
    """The TLS files (relative to ``cert_store``) that do not exist or cannot be read."""
    wanted = TLS_SERVER_FILES + (TLS_1_3_EXTRA_FILES if tls_1_3 else ())
    return [name for name in wanted
            if not (cert_store / name).is_file() or not os.access(cert_store / name, os.R_OK)]


def check_cert_store(cert_store: Path, tls_enforced: bool, tls_1_3: bool) -> None:
    """LaunchError when TLS is enforced and cannot work; a warning when only EVs asking for TLS would fail."""
    if not cert_store.is_dir():
        raise LaunchError(f"certificate store {cert_store} is not a directory (--cert-store / PKI_PATH)")
    if not os.access(cert_store, os.R_OK | os.X_OK):
        raise LaunchError(f"certificate store {cert_store} is not readable by this user (permission denied)")
    missing = missing_tls_files(cert_store, tls_1_3)
    if not missing:
        return
    hint = ("generate a test PKI with the package's create_certs.sh -v iso-2 in a copy of "
            "iso15118/shared/pki, or point --cert-store at your certificates")
    if tls_enforced:
        raise LaunchError(f"SECC_ENFORCE_TLS is set but {cert_store} lacks {', '.join(missing)}; {hint}")
    logger.warning("no TLS certificates in %s (%s): an EV that asks for TLS will fail; %s",
                   cert_store, ", ".join(missing), hint)
