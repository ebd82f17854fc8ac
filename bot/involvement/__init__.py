"""The involvement log: time partners give to the study, its review, and how it is paid."""
