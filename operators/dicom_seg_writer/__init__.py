"""dicom-seg-writer: label maps → DICOM SEG (BINARY, highdicom) referencing the source series."""
