#!/usr/bin/env bash
# Checks deploy/kubernetes (run by .ci/run): the PrometheusRule is what prometheus-rule.sh
# makes of the rules file; the configs in the ConfigMaps pass `sdm-watch config schema`
# (the binary is the first argument); every core manifest passes kubernetes-validate --strict for the
# Kubernetes version below; checkov's Kubernetes checks pass (a skip is an annotation with
# its reason, next to what it skips). Needs PyPI's kubernetes-validate and checkov.
set -euo pipefail
binary=$(realpath "${1:?usage: check.sh PATH-TO-sdm-watch}")
cd "$(dirname "$0")"
KUBERNETES=1.35.0

generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
./prometheus-rule.sh > "$generated"
if ! diff -u monitoring/prometheus-rule.yaml "$generated"; then
  echo "monitoring/prometheus-rule.yaml differs from deploy/prometheus/sdm-watch.rules.yml:" >&2
  echo "run deploy/kubernetes/prometheus-rule.sh > deploy/kubernetes/monitoring/prometheus-rule.yaml" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -f "$generated"; rm -rf "$work"' EXIT
"$binary" config schema > "$work/schema.json"
for dir in sqlite postgres; do
  # The config is generated into a ConfigMap whose name carries its hash, so that an edit
  # rolls the pods: the kustomization must generate it under the name the Deployment uses.
  grep -q '^configMapGenerator:' "$dir/kustomization.yaml" \
    && grep -q 'name: sdm-watch-config$' "$dir/kustomization.yaml" \
    && grep -q 'name: sdm-watch-config$' "$dir/deployment.yaml" \
    || { echo "$dir: the config must come from configMapGenerator sdm-watch-config" >&2; exit 1; }
  # Readiness is about serving (the status page stays routable in an SDM outage).
  grep -A2 'readinessProbe:' "$dir/deployment.yaml" | grep -q 'path: /healthz' \
    || { echo "$dir: readiness must be /healthz, not the API's health" >&2; exit 1; }
  out="$work/$dir.toml"
  cp "$dir/config.toml" "$out"
  python3 -m check_jsonschema --schemafile "$work/schema.json" "$out"
done

# Every manifest but kustomize's own files and prometheus-operator's resources (their
# schemas are CRDs, not Kubernetes'); the rules inside are checked by promtool.
manifests=$(find common sqlite postgres -name '*.yaml' ! -name kustomization.yaml | sort)
python3 -m kubernetes_validate --strict --kubernetes-version "$KUBERNETES" $manifests
echo "kubernetes-validate: $(echo "$manifests" | wc -l) manifests valid for Kubernetes $KUBERNETES"

# --skip-download: no call to Prisma Cloud (the machines running this have no way out).
python3 -m checkov.main --quiet --compact --skip-download --framework kubernetes -d .
