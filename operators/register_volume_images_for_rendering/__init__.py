"""register-volume-images-for-rendering: publish a job's volumes and label maps to the viewer
(one export task for the `renderserver` agent)."""
