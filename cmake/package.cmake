# `cpack -G DEB` in the build directory: one Debian package with the cnn command, libcnn.a, the
# headers, the CMake package and cnn.pc, installed under /usr. dpkg-shlibdeps (dpkg-dev) reads
# the command's shared libraries and declares their packages (libopenblas0, libgomp1, zlib1g,
# libstb0, libpng16-16, libjpeg62-turbo, libcpp-httplib0.11, ...); the development files need
# what no binary reveals, the -dev packages (libcnn.a links libpng and libjpeg, cnnConfig.cmake
# finds them with find_dependency) and pkg-config (cnnConfig.cmake finds OpenBLAS and stb through
# it), declared below. CPack builds the `all` target first (a no-op after a build).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cnn)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "the cnn developers")
set(CNN_PACKAGE_CONTACT "cnn developers <cnn@localhost>" CACHE STRING
    "The Debian package's Maintainer field")
set(CPACK_PACKAGE_CONTACT "${CNN_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "small convolutional neural networks with PyTorch's semantics: library and command")
set(CPACK_PACKAGE_DESCRIPTION
    "A C++20 library (static, with a CMake package and a pkg-config file) for small convolutional
neural networks with PyTorch's exact semantics, and the cnn command that trains, evaluates,
predicts with and draws the MNIST tutorial's model and serves an explorer page.")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # cnn_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "nlohmann-json3-dev (>= 3), zlib1g-dev, libopenblas-dev, libstb-dev, libpng-dev, \
libjpeg62-turbo-dev | libjpeg-dev, pkgconf | pkg-config")
# Built with MPI: the library's users link OpenMPI too, and `mpirun` runs the command.
if(CNN_WITH_MPI)
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS ", libopenmpi-dev, openmpi-bin")
endif()
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
include(CPack)
