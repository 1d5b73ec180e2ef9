# dwrseg-rt on an x86 machine with an NVIDIA GPU: ROS 2 Jazzy (Ubuntu 24.04), PyPI's CUDA torch and
# TensorRT's wheels (they bring their own CUDA libraries: the host needs only the driver and the
# NVIDIA container toolkit).
#   docker build -f docker/desktop.Dockerfile -t dwrseg-rt:desktop .
#   docker compose -f docker/compose.yaml up desktop
FROM ros:jazzy-ros-base

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv python3-pip python3-colcon-common-extensions \
      gstreamer1.0-tools gstreamer1.0-plugins-base \
 && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv --system-site-packages /opt/dwrseg
ENV PATH=/opt/dwrseg/bin:$PATH DWRSEG_RT_CACHE=/cache
COPY . /opt/dwrseg-rt
RUN pip install --no-cache-dir "/opt/dwrseg-rt[trt]" \
 && . /opt/ros/jazzy/setup.sh \
 && colcon --log-base /tmp/colcon-log build --base-paths /opt/dwrseg-rt/ros2_ws/src --build-base /tmp/colcon-build \
      --install-base /opt/dwrseg-rt/install \
 && rm -rf /tmp/colcon-build /tmp/colcon-log

COPY docker/entrypoint.sh /entrypoint.sh
VOLUME ["/cache"]
ENTRYPOINT ["/entrypoint.sh"]
CMD ["ros2", "launch", "dwrseg_rt", "segment.launch.py"]
