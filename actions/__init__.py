"""Custom actions of the Rasa assistant, served by rasa-sdk (`python -m rasa_sdk`).

rasa-sdk 3.21 runs on Python 3.11 and was verified against the Rasa 3.6.21 server
(custom actions with SlotSet, buttons and custom slot mappings); it warns on every
call that the versions differ, which is silenced here on purpose.

rasa-sdk imports this package at start-up, which is the action server's only hook for
process-wide logging set-up: personal data is masked in every log record from then on.
"""

import warnings

from pmi.jsonlog import configure_logging
from pmi.logs import install_masking

warnings.filterwarnings(
    "ignore", message="Your versions of rasa and rasa_sdk might not be compatible"
)
install_masking()
configure_logging(text_default=False)  # LOG_FORMAT=json: rasa-sdk's handlers write JSON
