# Read by cpack before it packages: the Debian package needs the paths of a /usr build
# (/usr/bin/larder, /etc/larder, /lib/systemd/system), fixed when the build was configured.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_LARDER_CONFIGURED_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR
    "larder: this build was configured with CMAKE_INSTALL_PREFIX=${CPACK_LARDER_CONFIGURED_PREFIX}; "
    "the Debian package needs /usr. Run `cmake -B <build dir> -DCMAKE_INSTALL_PREFIX=/usr` "
    "(nothing is recompiled), then cpack again, or use scripts/package-check")
endif()
