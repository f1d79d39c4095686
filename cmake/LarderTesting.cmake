# larder_add_gtest(<name> LABELS <label>... SOURCES <file>... LIBS <target>... [ENV VAR=value...] [TIMEOUT s])
# One ctest entry per GoogleTest binary: integration binaries start one PostgreSQL cluster or
# TLS server for their whole suite, so running them test-by-test would multiply that cost.
function(larder_add_gtest name)
  cmake_parse_arguments(T "" "TIMEOUT" "LABELS;SOURCES;LIBS;ENV" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock Threads::Threads)
  target_compile_definitions(${name} PRIVATE
    LARDER_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    LARDER_BINARY_DIR="${CMAKE_BINARY_DIR}"
    LARDER_BISCUIT_SAMPLES_DIR="${LARDER_BISCUIT_SAMPLES_DIR}")
  add_test(NAME ${name} COMMAND ${name} --gtest_color=no)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  if(T_ENV)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${T_ENV}")
  endif()
  if("unit" IN_LIST T_LABELS)
    set_property(GLOBAL APPEND PROPERTY LARDER_UNIT_TEST_TARGETS ${name})
  endif()
endfunction()

# larder_add_node_test(<name> LABELS <label>... SCRIPT <path relative to tests/interop> [ARGS ...] [DEPENDS targets] [TIMEOUT s])
# Runs a Node script from tests/interop with the project's pinned npm packages.
function(larder_add_node_test name)
  cmake_parse_arguments(T "" "SCRIPT;TIMEOUT" "LABELS;ARGS;DEPENDS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${name}
    COMMAND node --experimental-wasm-modules ${CMAKE_SOURCE_DIR}/tests/interop/${T_SCRIPT} ${T_ARGS}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/interop)
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "LARDER_BINARY_DIR=${CMAKE_BINARY_DIR};LARDER_SOURCE_DIR=${CMAKE_SOURCE_DIR};LARDER_BISCUIT_SAMPLES_DIR=${LARDER_BISCUIT_SAMPLES_DIR}")
endfunction()
