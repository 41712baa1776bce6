# np_layer(NAME [DEPS layer...])
#
# Builds src/NAME/*.cpp (tests excluded) into the static library np_NAME.
# Its public headers are include/netpoll/NAME/. Each layer gets an include
# root of its own in the build tree holding only netpoll/NAME, so a target
# sees exactly the headers of the layers it links: including a header of a
# layer you do not depend on is a compile error, not a convention.
function(np_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  set(root "${CMAKE_BINARY_DIR}/layer-include/${name}")
  file(MAKE_DIRECTORY "${root}/netpoll")
  if(NOT EXISTS "${root}/netpoll/${name}")
    file(CREATE_LINK "${PROJECT_SOURCE_DIR}/include/netpoll/${name}" "${root}/netpoll/${name}" SYMBOLIC)
  endif()

  file(GLOB srcs CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/${name}/*.cpp")
  list(FILTER srcs EXCLUDE REGEX "_test\\.cpp$")

  # Every public header must compile on its own (STYLE.md): one generated
  # translation unit per header, including nothing else first. Checked once,
  # in the build that has NP_HEADER_CHECKS on (the optimised one): the
  # sanitizer and fuzz builds would only compile the same lines again.
  set(headers "")
  if(NP_HEADER_CHECKS)
    file(GLOB headers CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/include/netpoll/${name}/*.h")
  endif()
  foreach(h IN LISTS headers)
    get_filename_component(hname "${h}" NAME)
    set(check "${CMAKE_BINARY_DIR}/header-check/${name}/${hname}.cpp")
    file(CONFIGURE OUTPUT "${check}" CONTENT "#include \"netpoll/${name}/${hname}\"\n")
    list(APPEND srcs "${check}")
  endforeach()
  add_library(np_${name} STATIC ${srcs})
  target_include_directories(np_${name} PUBLIC "${root}")
  foreach(dep IN LISTS ARG_DEPS)
    target_link_libraries(np_${name} PUBLIC np_${dep})
  endforeach()
  # Library code never throws: errors are values (STYLE.md, "Errors").
  target_compile_options(np_${name} PRIVATE -fno-exceptions)
  set_target_properties(np_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(NP_UNITY)
    # A layer's sources compiled in batches of 8 (one parse of the headers
    # they share). g++ takes a type from an anonymous namespace in a
    # class of an included .cpp for one in a header's class: not so here.
    set_target_properties(np_${name} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(np_${name} PRIVATE -Wno-subobject-linkage)
    endif()
  endif()
endfunction()
