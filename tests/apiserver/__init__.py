# SPDX-License-Identifier: Apache-2.0
"""berth's test Kubernetes API server (see kubeapi.py)."""
