"""A modality sending while the platform on Kubernetes is rolled, has pods deleted or its engine
leader killed (docs/kubernetes.md, "High availability"): used by tests/kubernetes/test_k8s_ha.py
and bench/kube_ha.py."""
