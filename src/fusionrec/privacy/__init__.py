"""Privacy: keyed pseudonyms at rest, PII generalisation, DP-SGD training, federated training.

Heavy parts (opacus, Flower) are imported only by the functions that need them.
"""

from fusionrec.privacy.folders import (
    pseudonymise_dataset,
    pseudonymise_folder,
    read_marker,
    rekey_folder,
)
from fusionrec.privacy.pii import PIIPolicy, protect_pii
from fusionrec.privacy.pseudonym import KEY_ENV, PseudonymKey, default_key_path

__all__ = [
    "KEY_ENV",
    "PIIPolicy",
    "PseudonymKey",
    "default_key_path",
    "protect_pii",
    "pseudonymise_dataset",
    "pseudonymise_folder",
    "read_marker",
    "rekey_folder",
]
