source benchmarks/gpu_training/common.sh
go dualglow-v2 50 '"model": "dual-glow", "batch_size": 2, "lr": 1e-3'
go pix2pix2d-all 60 '"model": "pix2pix-2d", "model_config": {"planes": "all"}'
go pix2pix2d-axial 60 '"model": "pix2pix-2d", "model_config": {"planes": "axial"}'
go cyclegan-independent 30 '"model": "cyclegan-3d", "batch_size": 2, "model_config": {"pairing": "independent"}'
go cyclegan-disjoint 30 '"model": "cyclegan-3d", "batch_size": 2, "model_config": {"pairing": "disjoint-halves"}'
collect
