"""lrtool where users already train: Lightning (:mod:`lrtool.integrations.lightning`) and the
Hugging Face Trainer (:mod:`lrtool.integrations.hf`). Each module imports its library only
when used; install them with ``pip install 'lrtool[integrations]'``."""
