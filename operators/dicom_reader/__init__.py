"""dicom-reader: the job's DICOM files → one NIfTI volume (+ JSON sidecar) per image series."""
