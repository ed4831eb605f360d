# source me: nibabel into /tmp/site, the two data halves joined in /tmp/cohort
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
mkdir -p /tmp/cohort && cp .gpu/participants.tsv /tmp/cohort/
for d in .gpu/data1 .gpu/data2 /tmp/data1 /tmp/data2; do [ -d $d ] && cp -rn $d/* /tmp/cohort/ 2>/dev/null; done
mkdir -p /tmp/data1 && [ -d .gpu/data1 ] && cp -rn .gpu/data1/* /tmp/data1/
echo "cohort: $(ls -d /tmp/cohort/sub-* | wc -l) subjects"
