# Runs at install time (cmake/install.cmake): the systemd units and their
# /etc/default files for the prefix installed to. With the prefix /usr
# (Debian's), /etc/default and /lib/systemd/system, where Debian 12 keeps
# units; with any other, PREFIX/etc/default and PREFIX/lib/systemd/system
# (systemd reads /usr/local/lib/systemd/system too).
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(np_sysconfdir /etc)
  set(np_unitdir /lib/systemd/system)
else()
  set(np_sysconfdir "${CMAKE_INSTALL_PREFIX}/etc")
  set(np_unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(NP_INSTALLED_BINDIR "${CMAKE_INSTALL_PREFIX}/${NP_BINDIR}")
set(NP_DEFAULT_DIR "${np_sysconfdir}/default")
file(REMOVE_RECURSE "${NP_WORK_DIR}")
foreach(service IN ITEMS netpoll-listen netpoll-dumpd)
  configure_file("${NP_PACKAGING_DIR}/systemd/${service}.service.in" "${NP_WORK_DIR}/${service}.service" @ONLY)
endforeach()
file(INSTALL "${NP_WORK_DIR}/netpoll-listen.service" "${NP_WORK_DIR}/netpoll-dumpd.service"
     DESTINATION "${np_unitdir}")
file(INSTALL "${NP_PACKAGING_DIR}/default/netpoll-listen" "${NP_PACKAGING_DIR}/default/netpoll-dumpd"
     DESTINATION "${NP_DEFAULT_DIR}")
