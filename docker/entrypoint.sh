#!/usr/bin/env bash
# Sources ROS and the dwrseg_rt package, builds (or finds) the TensorRT engine in /cache before the
# node starts, so the first start says what it is doing instead of a silent minute, then runs CMD.
set -euo pipefail
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /opt/dwrseg-rt/install/setup.bash
if [ "${DWRSEG_BUILD_ENGINE:-1}" = 1 ] && python3 -c "import tensorrt" 2>/dev/null; then
    echo "dwrseg-rt: building or finding the TensorRT engine in ${DWRSEG_RT_CACHE} (first start on this GPU: minutes)"
    dwrseg-rt export --format engine --weights "${DWRSEG_WEIGHTS:-camvid}" --precision "${DWRSEG_PRECISION:-fp16}" --build-only
fi
exec "$@"
