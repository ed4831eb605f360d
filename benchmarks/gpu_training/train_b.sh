source benchmarks/gpu_training/common.sh
go glagan-w05 60 '"model": "gla-gan", "model_config": {"width": 0.5}'
go pix2pix3d 120 '"model": "pix2pix-3d"'
for v in "global:\"mode\": \"global\"" "local:\"mode\": \"local\"" "k2:\"k\": 2" "k4:\"k\": 4" "k8:\"k\": 8" "l1:\"losses\": \"l1\"" "ssim:\"losses\": \"l1+ssim\"" "msssim:\"losses\": \"l1+msssim\""; do
  go ablation-${v%%:*} 40 "\"model\": \"gla-gan\", \"model_config\": {\"width\": 0.25, ${v#*:}}"
done
collect
