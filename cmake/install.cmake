# What `cmake --install` puts where (GNUInstallDirs; Debian's layout with
# --prefix /usr):
#   bin/netpoll                                  the command
#   LIBDIR/netpoll/libnetpoll_preload.so         netpoll run's preload (found
#                                                from bin/ by a relative path)
#   LIBDIR/libnetpoll.so.0 (+ .so) and .a        the library: the layers below,
#                                                exporting only namespace np::
#   include/netpoll/LAYER/                       their public headers
#   LIBDIR/cmake/netpoll/, LIBDIR/pkgconfig/     find_package(netpoll), netpoll.pc
#   share/man/man8/                              netpoll(8), netpoll-COMMAND(8)
#   share/bash-completion/completions/netpoll
#   systemd units and /etc/default files         written at install time for the
#                                                prefix installed to
#                                                (cmake/install_config.cmake)
# LIBDIR is lib/x86_64-linux-gnu: dh sets it for /usr, the default preset
# for any prefix, so one build tree installs to /usr/local (README) and to
# /usr (scripts/deb --reuse) alike, and the relative paths compiled in
# (the preload's, netpoll.pc's prefix) hold for both.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# netpoll run finds the preload beside itself (the build tree) or, installed,
# at this path from its own directory.
file(RELATIVE_PATH np_preload_from_bin "${CMAKE_INSTALL_FULL_BINDIR}"
     "${CMAKE_INSTALL_FULL_LIBDIR}/netpoll/libnetpoll_preload.so")
set_property(SOURCE "${PROJECT_SOURCE_DIR}/tools/cmd_run.cpp" DIRECTORY tools APPEND PROPERTY
             COMPILE_DEFINITIONS NP_PRELOAD_FROM_BINDIR="${np_preload_from_bin}")

# Nothing is installed from the sanitizer build: it makes no library, no
# man pages.
if(NP_SANITIZE)
  return()
endif()

# The library's layers: what a program links to log, dump or debug itself.
# The servers' layers (receiver, devlisten, dumpd) and the witness (libdw)
# are the command's own.
set(NP_LIBRARY_LAYERS base wire dev core console listen dump debugnet netdump gdb)

set(np_objects "")
foreach(layer IN LISTS NP_LIBRARY_LAYERS)
  list(APPEND np_objects "$<TARGET_OBJECTS:np_${layer}>")
endforeach()

# The shared library: SONAME libnetpoll.so.0, the export map's symbols only.
add_library(netpoll_shared SHARED ${np_objects})
target_link_libraries(netpoll_shared PUBLIC fmt::fmt PRIVATE xdp bpf)
set(np_map "${PROJECT_SOURCE_DIR}/src/library/exports.map")
target_link_options(netpoll_shared PRIVATE "-Wl,--version-script=${np_map}" -Wl,--no-undefined)
set_target_properties(netpoll_shared PROPERTIES OUTPUT_NAME netpoll EXPORT_NAME netpoll LINK_DEPENDS "${np_map}"
                                                VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
# The static one, the same objects.
add_library(netpoll_static STATIC ${np_objects})
# By name, not pkg-config's imported targets: the exported targets name
# them for programs that link the static library (-lxdp -lbpf).
target_link_libraries(netpoll_static PUBLIC fmt::fmt xdp bpf)
set_target_properties(netpoll_static PROPERTIES OUTPUT_NAME netpoll EXPORT_NAME netpoll_static)
foreach(t IN ITEMS netpoll_shared netpoll_static)
  target_include_directories(${t} INTERFACE "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  target_compile_features(${t} INTERFACE cxx_std_23)
endforeach()

install(TARGETS netpoll RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS netpoll_preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/netpoll)
install(TARGETS netpoll_shared netpoll_static EXPORT netpollTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(layer IN LISTS NP_LIBRARY_LAYERS)
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/netpoll/${layer}" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/netpoll)
endforeach()

set(np_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/netpoll)
install(EXPORT netpollTargets NAMESPACE netpoll:: DESTINATION ${np_cmake_dir})
configure_package_config_file("${PROJECT_SOURCE_DIR}/packaging/netpollConfig.cmake.in"
                              "${CMAKE_CURRENT_BINARY_DIR}/netpollConfig.cmake" INSTALL_DESTINATION ${np_cmake_dir})
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/netpollConfigVersion.cmake"
                                 COMPATIBILITY SameMajorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/netpollConfig.cmake" "${CMAKE_CURRENT_BINARY_DIR}/netpollConfigVersion.cmake"
        DESTINATION ${np_cmake_dir})
# Relocatable: the prefix is found from the file's own directory.
file(RELATIVE_PATH np_pc_to_prefix "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" np_pc_to_prefix "${np_pc_to_prefix}")
configure_file("${PROJECT_SOURCE_DIR}/packaging/netpoll.pc.in" "${CMAKE_CURRENT_BINARY_DIR}/netpoll.pc" @ONLY)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/netpoll.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(FILES "${PROJECT_SOURCE_DIR}/packaging/bash-completion/netpoll"
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

# The systemd units and their /etc/default files name paths of the prefix
# installed to (`cmake --install --prefix P` may differ from the configured
# one), so they are written at install time.
install(CODE "set(NP_PACKAGING_DIR \"${PROJECT_SOURCE_DIR}/packaging\")
set(NP_WORK_DIR \"${CMAKE_CURRENT_BINARY_DIR}/install-config\")
set(NP_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
include(\"${PROJECT_SOURCE_DIR}/cmake/install_config.cmake\")")

# Man pages: each command's own --help through help2man
# (scripts/man-pages), so no option is written down twice.
find_program(NP_HELP2MAN help2man REQUIRED)
set(np_man_dir "${CMAKE_CURRENT_BINARY_DIR}/man")
add_custom_command(OUTPUT "${np_man_dir}/netpoll.8"
                   COMMAND "${PROJECT_SOURCE_DIR}/scripts/man-pages" "$<TARGET_FILE:netpoll>" "${np_man_dir}"
                           ${PROJECT_VERSION}
                   DEPENDS netpoll "${PROJECT_SOURCE_DIR}/scripts/man-pages" "${PROJECT_SOURCE_DIR}/packaging/man.h2m"
                   COMMENT "Man pages from each command's --help")
add_custom_target(man_pages ALL DEPENDS "${np_man_dir}/netpoll.8")
install(DIRECTORY "${np_man_dir}/" DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 FILES_MATCHING PATTERN "*.8")
