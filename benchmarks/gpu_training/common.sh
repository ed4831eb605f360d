# sourced by train_b.sh / train_c.sh: setup, go NAME EPOCHS JSON-FIELDS (in the background), collect
source benchmarks/gpu_training/setup.sh > /tmp/setup.log 2>&1; tail -1 /tmp/setup.log; rm -rf /tmp/runs /tmp/logs
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p /tmp/runs /tmp/logs
go() { # name, epochs, json fields
  timeout 520 python3 benchmarks/gpu_training/device_cli.py "{\"data\": \"/tmp/cohort\", \"split_file\": \".gpu/split.json\", \"device\": \"cuda\", \"precision\": \"fp32\", \"batch_size\": 4, \"lr\": 2e-4, \"epochs\": $2, \"run_dir\": \"/tmp/runs/$1\", $3}" > /tmp/logs/$1.log 2>&1 &
}
collect() { # wait for the runs, keep each run's best weights without optimiser state, split for the return
  sleep 20; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
  wait
for f in /tmp/logs/*.log; do echo "== $f"; tail -2 $f; done
python3 - <<'PY'
import torch, pathlib
for run in sorted(pathlib.Path('/tmp/runs').iterdir()):
    ck = run / 'checkpoint.pt'
    if not ck.exists():
        print(run.name, 'no checkpoint'); continue
    state = torch.load(ck, map_location='cpu', weights_only=True)
    best = run / 'best.pt'
    if best.exists():
        state['state_dict'] = torch.load(best, map_location='cpu', weights_only=True)
    state['optimizers'] = []  # transfer copy: the best weights, no optimiser state (no resume)
    state['transfer'] = 'best weights only; optimiser state left on the GPU machine'
    torch.save(state, run / 'slim.pt')
    print(run.name, 'epochs', state['epoch'] + 1, 'best', state['best'])
PY
cd /tmp/runs && tar cf /tmp/runs.tar */slim.pt */history.jsonl */summary.json */split.json 2>/dev/null; ls -la /tmp/runs.tar
split -b 15M /tmp/runs.tar $OUT/runs.tar.part-
ls -la $OUT
}
