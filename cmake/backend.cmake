# One backend per libtorch: the recorder, replay, models, the shim and the
# program that runs record --model, replay and bench, all built against
# that libtorch, in backends/<version>/ of the build tree with a manifest
# (backend.txt) that the libtorch-free `cautograd` reads to choose one.
#
# cautograd_backend(VERSION <torch.__version__> ORIGIN debian|pip
#                   INCLUDES <dirs> LIBRARIES <files> LIBC10 <file>
#                   CXX_STANDARD 17|20 PYTHON <interpreter>)
function(cautograd_backend)
  cmake_parse_arguments(B "" "VERSION;ORIGIN;LIBC10;CXX_STANDARD;PYTHON" "INCLUDES;LIBRARIES;DEFINITIONS" ${ARGN})
  string(MAKE_C_IDENTIFIER "${B_VERSION}" id)
  if(TARGET cautograd_torch_${id})
    message(FATAL_ERROR "two backends for torch ${B_VERSION}: give each libtorch once")
  endif()
  set(dir ${CMAKE_BINARY_DIR}/backends/${B_VERSION})
  get_filename_component(libc10 "${B_LIBC10}" REALPATH)
  get_filename_component(libdir "${libc10}" DIRECTORY)

  # Headers as SYSTEM: libtorch's own warnings are not ours.
  add_library(cautograd_torch_${id} INTERFACE)
  target_include_directories(cautograd_torch_${id} SYSTEM INTERFACE ${B_INCLUDES})
  target_link_libraries(cautograd_torch_${id} INTERFACE ${B_LIBRARIES})
  target_compile_definitions(cautograd_torch_${id} INTERFACE ${B_DEFINITIONS} CAUTOGRAD_BACKEND_VERSION="${B_VERSION}")
  target_compile_features(cautograd_torch_${id} INTERFACE cxx_std_${B_CXX_STANDARD})

  add_library(cautograd_bridge_${id} STATIC lib/bridge/names.cc lib/bridge/tensor_bytes.cc)
  target_link_libraries(cautograd_bridge_${id} PUBLIC cautograd_trace cautograd_torch_${id})

  add_library(cautograd_recorder_${id} STATIC
    lib/recorder/call_recorder.cc
    lib/torch_compat/ca_walk.cc
    lib/recorder/engine_hook.cc
    lib/recorder/hooks.cc
    lib/recorder/op_capture.cc
    lib/recorder/python_hooks.cc
    lib/recorder/recorder.cc
  )
  target_link_libraries(cautograd_recorder_${id} PUBLIC cautograd_bridge_${id} ${CMAKE_DL_LIBS})

  add_library(cautograd_replay_${id} STATIC
    lib/replay/isolated.cc
    lib/replay/prepared.cc
    lib/replay/replay.cc
    lib/replay/report_json.cc
  )
  target_link_libraries(cautograd_replay_${id} PUBLIC cautograd_bridge_${id})

  add_library(cautograd_models_${id} STATIC lib/models/models.cc)
  target_link_libraries(cautograd_models_${id} PUBLIC cautograd_torch_${id})

  # Loaded by libcautograd_preload.so into the processes of `record --
  # COMMAND` that use this libtorch; its constructor starts a Recorder.
  add_library(cautograd_shim_${id} SHARED lib/shim/shim.cc)
  target_link_libraries(cautograd_shim_${id} PRIVATE cautograd_recorder_${id})
  set_target_properties(cautograd_shim_${id} PROPERTIES OUTPUT_NAME cautograd_shim LIBRARY_OUTPUT_DIRECTORY ${dir})

  add_executable(cautograd_backend_${id}
    tools/backend_main.cc
    tools/command.cc
    tools/cmd_bench.cc
    tools/cmd_record_model.cc
    tools/cmd_reduce.cc
    tools/cmd_replay.cc
    tools/record_flags.cc
  )
  target_link_libraries(cautograd_backend_${id} PRIVATE cautograd_recorder_${id} cautograd_replay_${id}
                        cautograd_models_${id} cautograd_recompile cautograd_reduce CLI11::CLI11
                        nlohmann_json::nlohmann_json)
  set_target_properties(cautograd_backend_${id} PROPERTIES OUTPUT_NAME cautograd-backend RUNTIME_OUTPUT_DIRECTORY ${dir})

  foreach(t bridge recorder replay models shim backend)
    cautograd_target(cautograd_${t}_${id})
  endforeach()
  # Installed, they still find the wheel's libraries (the build tree's RUNPATH would be dropped).
  set_target_properties(cautograd_backend_${id} cautograd_shim_${id} PROPERTIES INSTALL_RPATH "${libdir}")
  add_dependencies(cautograd cautograd_backend_${id} cautograd_shim_${id})

  file(WRITE ${dir}/backend.txt
       "# A cautograd backend: what `cautograd` reads to choose it.\n"
       "version=${B_VERSION}\norigin=${B_ORIGIN}\nlibc10=${libc10}\npython=${B_PYTHON}\n")
  install(TARGETS cautograd_backend_${id} RUNTIME DESTINATION lib/cautograd/backends/${B_VERSION})
  install(TARGETS cautograd_shim_${id} LIBRARY DESTINATION lib/cautograd/backends/${B_VERSION})
  install(FILES ${dir}/backend.txt DESTINATION lib/cautograd/backends/${B_VERSION})

  if(CAUTOGRAD_TESTS)
    add_executable(torch_tests_${id}
      tests/unit/diff_recorded_test.cc
      tests/unit/models_test.cc
      tests/unit/prepared_test.cc
      tests/unit/recompile_recorded_test.cc
      tests/unit/recorder_test.cc
      tests/unit/reduce_test.cc
      tests/unit/replay_test.cc
    )
    target_link_libraries(torch_tests_${id} PRIVATE cautograd_recorder_${id} cautograd_replay_${id}
                          cautograd_models_${id} cautograd_recompile cautograd_diff cautograd_reduce GTest::gtest_main)
    target_compile_options(torch_tests_${id} PRIVATE ${CAUTOGRAD_WARNINGS})
    set_target_properties(torch_tests_${id} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${dir})
    gtest_discover_tests(torch_tests_${id} TEST_PREFIX "torch-${B_VERSION}:" DISCOVERY_TIMEOUT 120
                         PROPERTIES TIMEOUT 600)

    # A plain libtorch program for `record -- COMMAND` to record.
    add_executable(train_cpp_${id} tests/programs/train.cc)
    target_link_libraries(train_cpp_${id} PRIVATE cautograd_torch_${id})
    set_target_properties(train_cpp_${id} PROPERTIES OUTPUT_NAME train_cpp RUNTIME_OUTPUT_DIRECTORY ${dir})

    add_test(NAME e2e-torch-${B_VERSION}
             COMMAND bash ${PROJECT_SOURCE_DIR}/tests/e2e/run.sh $<TARGET_FILE:cautograd> ${PROJECT_SOURCE_DIR}
                     $<TARGET_FILE:train_cpp_${id}>)
    set_tests_properties(e2e-torch-${B_VERSION} PROPERTIES TIMEOUT 900
                         ENVIRONMENT "CAUTOGRAD_TORCH=${B_VERSION};CAUTOGRAD_TEST_PYTHON=${B_PYTHON}")

    # The shapes of graph ordinary training code builds, each recorded
    # whole and replayed exactly (tests/programs/shapes).
    if(B_PYTHON)
      add_test(NAME shapes-torch-${B_VERSION}
               COMMAND bash ${PROJECT_SOURCE_DIR}/tests/programs/shapes/run.sh $<TARGET_FILE:cautograd> ${B_PYTHON})
      set_tests_properties(shapes-torch-${B_VERSION} PROPERTIES TIMEOUT 900 ENVIRONMENT "CAUTOGRAD_TORCH=${B_VERSION}")
    endif()

    # The reproducers `repro --emit python` writes, run by this backend's
    # Python with its torch alone (tests/e2e/repro.sh).
    if(B_PYTHON)
      add_test(NAME repro-torch-${B_VERSION}
               COMMAND bash ${PROJECT_SOURCE_DIR}/tests/e2e/repro.sh $<TARGET_FILE:cautograd> ${PROJECT_SOURCE_DIR}
                       ${B_PYTHON})
      set_tests_properties(repro-torch-${B_VERSION} PROPERTIES TIMEOUT 600 ENVIRONMENT "CAUTOGRAD_TORCH=${B_VERSION}")
    endif()

    # reduce on planted problems; its results' reproducers run by this
    # backend's Python (tests/e2e/reduce.sh).
    if(B_PYTHON)
      add_test(NAME reduce-torch-${B_VERSION}
               COMMAND bash ${PROJECT_SOURCE_DIR}/tests/e2e/reduce.sh $<TARGET_FILE:cautograd> ${PROJECT_SOURCE_DIR}
                       ${B_PYTHON})
      set_tests_properties(reduce-torch-${B_VERSION} PROPERTIES TIMEOUT 600 ENVIRONMENT "CAUTOGRAD_TORCH=${B_VERSION}")
    endif()

    # Compiled autograd itself as the reference (tests/conformance): where
    # it exists, on a backend with a Python.
    if(B_PYTHON AND B_VERSION VERSION_GREATER_EQUAL 2.4)
      add_test(NAME conformance-torch-${B_VERSION}
               COMMAND bash ${PROJECT_SOURCE_DIR}/tests/conformance/run.sh $<TARGET_FILE:cautograd> ${B_PYTHON}
                       ${B_VERSION})
      set_tests_properties(conformance-torch-${B_VERSION} PROPERTIES TIMEOUT 1200)
    endif()
  endif()
  set_property(GLOBAL APPEND PROPERTY CAUTOGRAD_BACKENDS "${B_VERSION}")
  set_property(GLOBAL APPEND PROPERTY CAUTOGRAD_BACKEND_PYTHONS "${B_PYTHON}")
endfunction()

# A backend for the torch that `python` imports (a pip wheel in a venv).
# The wheel's own CMake config is not used: for a CUDA wheel it requires
# the CUDA toolkit even for a CPU-side tool. The headers and libraries are
# read from the wheel instead, and the binaries get RUNPATH to its lib.
function(cautograd_pip_backend python)
  execute_process(
    COMMAND ${python} -c "import os, torch\nd = os.path.dirname(os.path.realpath(torch.__file__))\nprint(torch.__version__)\nprint(d)"
    OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "CAUTOGRAD_TORCH_PYTHONS: '${python}' cannot import torch: ${err}")
  endif()
  string(REPLACE "\n" ";" out "${out}")
  list(GET out 0 version)
  list(GET out 1 torch_dir)
  if(NOT EXISTS ${torch_dir}/include/torch/csrc/autograd/engine.h OR NOT EXISTS ${torch_dir}/lib/libc10.so)
    message(FATAL_ERROR "'${python}' imports torch ${version} from ${torch_dir}, which has no C++ headers or "
                        "libraries (Debian's python3-torch is built with Debian's libtorch-dev: leave it out)")
  endif()
  message(STATUS "cautograd: backend for torch ${version} from ${torch_dir}")
  cautograd_backend(VERSION ${version} ORIGIN pip PYTHON ${python} CXX_STANDARD 20
                    INCLUDES ${torch_dir}/include ${torch_dir}/include/torch/csrc/api/include
                    LIBRARIES ${torch_dir}/lib/libtorch_cpu.so ${torch_dir}/lib/libc10.so
                    LIBC10 ${torch_dir}/lib/libc10.so)
endfunction()
