# What `cmake --install <build> --prefix P` puts in place (included by the top-level
# CMakeLists.txt when CNN_INSTALL is on):
#   include/cnn/**                        the public headers
#   lib/libcnn.a                          the library
#   lib/cmake/cnn/cnn{Config,ConfigVersion,Targets,Targets-release}.cmake
#                                         find_package(cnn CONFIG) -> cnn::cnn
#   lib/pkgconfig/cnn.pc                  pkg-config --cflags --libs cnn
#   bin/cnn                               the command, when CNN_BUILD_CLI is on
# tests/install.sh checks this list, a CMake consumer (examples/consumer) and a pkg-config one.
include(CMakePackageConfigHelpers)

set(CNN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/cnn)

install(TARGETS cnn EXPORT cnnTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT cnn)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/cnn DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT cnn FILES_MATCHING PATTERN "*.h")
install(EXPORT cnnTargets NAMESPACE cnn:: DESTINATION ${CNN_CMAKE_DIR} COMPONENT cnn)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/cnnConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/cnnConfig.cmake
                              INSTALL_DESTINATION ${CNN_CMAKE_DIR})
# 0.x: a new minor version may break the API, so find_package(cnn 0.1) takes 0.1.* only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cnnConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cnnConfig.cmake ${PROJECT_BINARY_DIR}/cnnConfigVersion.cmake
        DESTINATION ${CNN_CMAKE_DIR} COMPONENT cnn)

# cnn.pc finds its prefix from its own place (${pcfiledir}), so the prefix given to
# `cmake --install --prefix` or to CPack need not be known when configuring.
file(RELATIVE_PATH CNN_PC_TO_PREFIX /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
string(REGEX REPLACE "/$" "" CNN_PC_TO_PREFIX "${CNN_PC_TO_PREFIX}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(CNN_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(CNN_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CNN_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(CNN_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# libcnn.a is static, so what it links privately (stb's compiled part, libstb) goes in Libs, not
# Libs.private: a plain `pkg-config --libs cnn` must link. stb's include directory is not wanted
# by a consumer, hence its flags here rather than `Requires: stb`. OpenBLAS comes by
# `Requires: openblas` (cmake/cnn.pc.in), which follows the system's choice of OpenBLAS build; its
# include directory reaches --cflags too, harmlessly (no public header includes cblas.h).
set(CNN_PC_STB_LIBS "")
foreach(dir IN LISTS CNN_STB_LIBRARY_DIRS)
  if(NOT dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
    string(APPEND CNN_PC_STB_LIBS " -L${dir}")
  endif()
endforeach()
foreach(lib IN LISTS CNN_STB_LIBRARIES)
  string(APPEND CNN_PC_STB_LIBS " -l${lib}")
endforeach()
string(STRIP "${CNN_PC_STB_LIBS}" CNN_PC_STB_LIBS)
list(JOIN OpenMP_CXX_FLAGS " " CNN_PC_OPENMP)
# Built with the CUDA backend: the CUDA runtime (static, as CMake links it); cuBLAS is loaded
# when first used, not linked.
set(CNN_PC_CUDA_LIBS "")
if(CNN_WITH_CUDA)
  set(CNN_PC_CUDA_LIBS "-L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -ldl -lrt -lpthread")
endif()
# Built with MPI: OpenMPI's C library, through its own pkg-config file.
set(CNN_PC_MPI "")
if(CNN_WITH_MPI)
  # OpenMPI's pkg-config module, or MPICH's.
  if(MPI_CXX_LIBRARIES MATCHES "openmpi")
    set(CNN_PC_MPI "ompi-c")
  else()
    set(CNN_PC_MPI "mpich")
  endif()
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/cnn.pc.in ${PROJECT_BINARY_DIR}/cnn.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cnn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT cnn)

if(CNN_BUILD_CLI)
  install(TARGETS cnn_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cnn)
endif()
