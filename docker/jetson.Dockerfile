# dwrseg-rt on a Jetson with JetPack 6 (L4T r36): ROS 2 Humble, NVIDIA's torch, TensorRT from the base.
# The container's L4T major must match the host's (r36.2/r36.3 vs r36.4 differ): set L4T to the
# host's `cat /etc/nv_tegra_release` and TORCH_INDEX to the matching Jetson AI Lab index.
#   docker build -f docker/jetson.Dockerfile -t dwrseg-rt:jetson .
#   docker compose -f docker/compose.yaml up jetson
ARG L4T=r36.2.0
FROM nvcr.io/nvidia/l4t-jetpack:${L4T}

ARG TORCH_INDEX=https://pypi.jetson-ai-lab.io/jp6/cu122
ARG TORCH_VERSION=2.3.0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 ROS_DISTRO=humble

# ROS 2 Humble (Ubuntu 22.04 packages), colcon, the system GStreamer for csi:// cameras,
# TensorRT's Python bindings for the system Python 3.10
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl gnupg2 lsb-release ca-certificates \
 && curl -sSL https://raw.githubusercontent.com/ros/rosdistro/master/ros.key -o /usr/share/keyrings/ros-archive-keyring.gpg \
 && echo "deb [signed-by=/usr/share/keyrings/ros-archive-keyring.gpg] http://packages.ros.org/ros2/ubuntu $(lsb_release -cs) main" \
      > /etc/apt/sources.list.d/ros2.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends ros-humble-ros-base ros-humble-rmw-fastrtps-cpp python3-colcon-common-extensions \
      python3-venv python3-pip python3-libnvinfer gstreamer1.0-tools gstreamer1.0-plugins-base \
 && rm -rf /var/lib/apt/lists/*

# one venv that also sees ROS's and TensorRT's system packages; NVIDIA's torch first (PyPI's aarch64
# build cannot use the GPU), numpy 1 for it; dwrseg-rt's own install then leaves torch as it is
RUN python3 -m venv --system-site-packages /opt/dwrseg \
 && /opt/dwrseg/bin/pip install --no-cache-dir "numpy<2" "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" \
      --extra-index-url https://pypi.org/simple
ENV PATH=/opt/dwrseg/bin:$PATH DWRSEG_RT_CACHE=/cache
COPY . /opt/dwrseg-rt
RUN pip install --no-cache-dir /opt/dwrseg-rt \
 && . /opt/ros/humble/setup.sh \
 && colcon --log-base /tmp/colcon-log build --base-paths /opt/dwrseg-rt/ros2_ws/src --build-base /tmp/colcon-build \
      --install-base /opt/dwrseg-rt/install \
 && rm -rf /tmp/colcon-build /tmp/colcon-log

COPY docker/entrypoint.sh /entrypoint.sh
# engines are built on first start into this volume and reused: keep it between runs
VOLUME ["/cache"]
ENTRYPOINT ["/entrypoint.sh"]
CMD ["ros2", "launch", "dwrseg_rt", "segment.launch.py"]
