# cuDNN, optional: the second convolution implementation (kernels/cuda/conv_cudnn.cu). Looked
# for in CUDNN_ROOT (cache variable or environment), the CUDA toolkit, and the Python wheel
# nvidia-cudnn-cu13 (or -cu12) of the python3 on the PATH. When it is missing the convolutions
# use the engine's own kernels only. -DSHALLOW_CUDNN=OFF skips the search.
option(SHALLOW_CUDNN "Link cuDNN when it is found (the cuDNN convolution path)" ON)
if(NOT SHALLOW_CUDNN)
  message(STATUS "cuDNN: off (SHALLOW_CUDNN=OFF); convolutions use the implicit-GEMM kernels")
  return()
endif()

set(_cudnn_hints ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_ROOT}
                 ${CUDAToolkit_TARGET_DIR} /usr/local/cuda)
find_program(_cudnn_python NAMES python3)
if(_cudnn_python)
  execute_process(
    COMMAND ${_cudnn_python} -c "import nvidia.cudnn as m; print(list(m.__path__)[0])"
    OUTPUT_VARIABLE _cudnn_wheel OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
    RESULT_VARIABLE _cudnn_wheel_rc)
  if(_cudnn_wheel_rc EQUAL 0 AND _cudnn_wheel)
    list(APPEND _cudnn_hints ${_cudnn_wheel})
  endif()
endif()

find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_cudnn_hints} ${CUDAToolkit_INCLUDE_DIRS}
          PATH_SUFFIXES include)
# Wheels ship only the versioned name.
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_cudnn_hints}
             PATH_SUFFIXES lib lib64 lib/x64)

if(CUDNN_INCLUDE_DIR AND CUDNN_LIBRARY)
  message(STATUS "cuDNN: ${CUDNN_LIBRARY} (headers in ${CUDNN_INCLUDE_DIR})")
  target_include_directories(shallow_kernels_cuda PRIVATE ${CUDNN_INCLUDE_DIR})
  target_link_libraries(shallow_kernels_cuda PUBLIC ${CUDNN_LIBRARY})
  set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/cuda/conv_cudnn.cu PROPERTIES
                              COMPILE_DEFINITIONS SHALLOW_WITH_CUDNN=1)
else()
  message(STATUS "cuDNN: not found (set CUDNN_ROOT to its folder); convolutions use the "
                 "implicit-GEMM kernels only")
endif()
