"""A hospital's peak hour against a running platform, for bench/peak_hour.py and the load tests.

The pieces, one module each:
    mix.py        the studies of a peak hour (modality mix, instances per study) as a schedule
    senders.py    dcmtk storescu senders that work through the schedule and retry what was refused
    pacs.py       Orthanc as the PACS the results go to
    rig.py        the platform as its own process, configured for the load (pipeline, AE, export)
    observe.py    what the platform did: per-stage latencies from the store, CPU/memory/queue samples
    verify.py     nothing lost: every acknowledged instance in a job, every job's result in the PACS

Figures are printed only by bench/peak_hour.py; the tests assert nothing is lost.
"""
