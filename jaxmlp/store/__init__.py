"""What a study leaves on disk, in one place: member records and folders, run.json
(the run's identity) and the study's lock, every file written atomically. Below the
engine, which writes through it."""
