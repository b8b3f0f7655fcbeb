package dev.voxcache.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Turns reference audio into speaker conditioning, once per distinct clip.
 * Results are cached by content (sha256 of the audio bytes), encoder and
 * weights digest, in a per-process LRU in front of a shared Redis. A cache hit
 * never decodes the audio. Errors carry google.rpc.BadRequest details naming
 * the offending field.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: voxcache/v1/embedder.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class EmbedderGrpc {

  private EmbedderGrpc() {}

  public static final String SERVICE_NAME = "voxcache.v1.Embedder";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.EmbedRequest,
      dev.voxcache.v1.EmbedResponse> getEmbedMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Embed",
      requestType = dev.voxcache.v1.EmbedRequest.class,
      responseType = dev.voxcache.v1.EmbedResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.EmbedRequest,
      dev.voxcache.v1.EmbedResponse> getEmbedMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.EmbedRequest, dev.voxcache.v1.EmbedResponse> getEmbedMethod;
    if ((getEmbedMethod = EmbedderGrpc.getEmbedMethod) == null) {
      synchronized (EmbedderGrpc.class) {
        if ((getEmbedMethod = EmbedderGrpc.getEmbedMethod) == null) {
          EmbedderGrpc.getEmbedMethod = getEmbedMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.EmbedRequest, dev.voxcache.v1.EmbedResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Embed"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.EmbedRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.EmbedResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EmbedderMethodDescriptorSupplier("Embed"))
              .build();
        }
      }
    }
    return getEmbedMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.RegisterVoiceRequest,
      dev.voxcache.v1.RegisterVoiceResponse> getRegisterVoiceMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RegisterVoice",
      requestType = dev.voxcache.v1.RegisterVoiceRequest.class,
      responseType = dev.voxcache.v1.RegisterVoiceResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.RegisterVoiceRequest,
      dev.voxcache.v1.RegisterVoiceResponse> getRegisterVoiceMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.RegisterVoiceRequest, dev.voxcache.v1.RegisterVoiceResponse> getRegisterVoiceMethod;
    if ((getRegisterVoiceMethod = EmbedderGrpc.getRegisterVoiceMethod) == null) {
      synchronized (EmbedderGrpc.class) {
        if ((getRegisterVoiceMethod = EmbedderGrpc.getRegisterVoiceMethod) == null) {
          EmbedderGrpc.getRegisterVoiceMethod = getRegisterVoiceMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.RegisterVoiceRequest, dev.voxcache.v1.RegisterVoiceResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RegisterVoice"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.RegisterVoiceRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.RegisterVoiceResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EmbedderMethodDescriptorSupplier("RegisterVoice"))
              .build();
        }
      }
    }
    return getRegisterVoiceMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.DeleteVoiceRequest,
      dev.voxcache.v1.DeleteVoiceResponse> getDeleteVoiceMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "DeleteVoice",
      requestType = dev.voxcache.v1.DeleteVoiceRequest.class,
      responseType = dev.voxcache.v1.DeleteVoiceResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.DeleteVoiceRequest,
      dev.voxcache.v1.DeleteVoiceResponse> getDeleteVoiceMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.DeleteVoiceRequest, dev.voxcache.v1.DeleteVoiceResponse> getDeleteVoiceMethod;
    if ((getDeleteVoiceMethod = EmbedderGrpc.getDeleteVoiceMethod) == null) {
      synchronized (EmbedderGrpc.class) {
        if ((getDeleteVoiceMethod = EmbedderGrpc.getDeleteVoiceMethod) == null) {
          EmbedderGrpc.getDeleteVoiceMethod = getDeleteVoiceMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.DeleteVoiceRequest, dev.voxcache.v1.DeleteVoiceResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "DeleteVoice"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.DeleteVoiceRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.DeleteVoiceResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EmbedderMethodDescriptorSupplier("DeleteVoice"))
              .build();
        }
      }
    }
    return getDeleteVoiceMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.ListVoicesRequest,
      dev.voxcache.v1.ListVoicesResponse> getListVoicesMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListVoices",
      requestType = dev.voxcache.v1.ListVoicesRequest.class,
      responseType = dev.voxcache.v1.ListVoicesResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.ListVoicesRequest,
      dev.voxcache.v1.ListVoicesResponse> getListVoicesMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.ListVoicesRequest, dev.voxcache.v1.ListVoicesResponse> getListVoicesMethod;
    if ((getListVoicesMethod = EmbedderGrpc.getListVoicesMethod) == null) {
      synchronized (EmbedderGrpc.class) {
        if ((getListVoicesMethod = EmbedderGrpc.getListVoicesMethod) == null) {
          EmbedderGrpc.getListVoicesMethod = getListVoicesMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.ListVoicesRequest, dev.voxcache.v1.ListVoicesResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListVoices"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.ListVoicesRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.ListVoicesResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EmbedderMethodDescriptorSupplier("ListVoices"))
              .build();
        }
      }
    }
    return getListVoicesMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.PreloadRequest,
      dev.voxcache.v1.PreloadResponse> getPreloadMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Preload",
      requestType = dev.voxcache.v1.PreloadRequest.class,
      responseType = dev.voxcache.v1.PreloadResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.CLIENT_STREAMING)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.PreloadRequest,
      dev.voxcache.v1.PreloadResponse> getPreloadMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.PreloadRequest, dev.voxcache.v1.PreloadResponse> getPreloadMethod;
    if ((getPreloadMethod = EmbedderGrpc.getPreloadMethod) == null) {
      synchronized (EmbedderGrpc.class) {
        if ((getPreloadMethod = EmbedderGrpc.getPreloadMethod) == null) {
          EmbedderGrpc.getPreloadMethod = getPreloadMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.PreloadRequest, dev.voxcache.v1.PreloadResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.CLIENT_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Preload"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.PreloadRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.PreloadResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EmbedderMethodDescriptorSupplier("Preload"))
              .build();
        }
      }
    }
    return getPreloadMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.GetStatsRequest,
      dev.voxcache.v1.GetStatsResponse> getGetStatsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetStats",
      requestType = dev.voxcache.v1.GetStatsRequest.class,
      responseType = dev.voxcache.v1.GetStatsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.GetStatsRequest,
      dev.voxcache.v1.GetStatsResponse> getGetStatsMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.GetStatsRequest, dev.voxcache.v1.GetStatsResponse> getGetStatsMethod;
    if ((getGetStatsMethod = EmbedderGrpc.getGetStatsMethod) == null) {
      synchronized (EmbedderGrpc.class) {
        if ((getGetStatsMethod = EmbedderGrpc.getGetStatsMethod) == null) {
          EmbedderGrpc.getGetStatsMethod = getGetStatsMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.GetStatsRequest, dev.voxcache.v1.GetStatsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetStats"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.GetStatsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.GetStatsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EmbedderMethodDescriptorSupplier("GetStats"))
              .build();
        }
      }
    }
    return getGetStatsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.SearchVoicesRequest,
      dev.voxcache.v1.SearchVoicesResponse> getSearchVoicesMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SearchVoices",
      requestType = dev.voxcache.v1.SearchVoicesRequest.class,
      responseType = dev.voxcache.v1.SearchVoicesResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.SearchVoicesRequest,
      dev.voxcache.v1.SearchVoicesResponse> getSearchVoicesMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.SearchVoicesRequest, dev.voxcache.v1.SearchVoicesResponse> getSearchVoicesMethod;
    if ((getSearchVoicesMethod = EmbedderGrpc.getSearchVoicesMethod) == null) {
      synchronized (EmbedderGrpc.class) {
        if ((getSearchVoicesMethod = EmbedderGrpc.getSearchVoicesMethod) == null) {
          EmbedderGrpc.getSearchVoicesMethod = getSearchVoicesMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.SearchVoicesRequest, dev.voxcache.v1.SearchVoicesResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SearchVoices"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.SearchVoicesRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.SearchVoicesResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EmbedderMethodDescriptorSupplier("SearchVoices"))
              .build();
        }
      }
    }
    return getSearchVoicesMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.voxcache.v1.ScoreSpeakerRequest,
      dev.voxcache.v1.ScoreSpeakerResponse> getScoreSpeakerMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ScoreSpeaker",
      requestType = dev.voxcache.v1.ScoreSpeakerRequest.class,
      responseType = dev.voxcache.v1.ScoreSpeakerResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.voxcache.v1.ScoreSpeakerRequest,
      dev.voxcache.v1.ScoreSpeakerResponse> getScoreSpeakerMethod() {
    io.grpc.MethodDescriptor<dev.voxcache.v1.ScoreSpeakerRequest, dev.voxcache.v1.ScoreSpeakerResponse> getScoreSpeakerMethod;
    if ((getScoreSpeakerMethod = EmbedderGrpc.getScoreSpeakerMethod) == null) {
      synchronized (EmbedderGrpc.class) {
        if ((getScoreSpeakerMethod = EmbedderGrpc.getScoreSpeakerMethod) == null) {
          EmbedderGrpc.getScoreSpeakerMethod = getScoreSpeakerMethod =
              io.grpc.MethodDescriptor.<dev.voxcache.v1.ScoreSpeakerRequest, dev.voxcache.v1.ScoreSpeakerResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ScoreSpeaker"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.ScoreSpeakerRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.voxcache.v1.ScoreSpeakerResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EmbedderMethodDescriptorSupplier("ScoreSpeaker"))
              .build();
        }
      }
    }
    return getScoreSpeakerMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static EmbedderStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<EmbedderStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<EmbedderStub>() {
        @java.lang.Override
        public EmbedderStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new EmbedderStub(channel, callOptions);
        }
      };
    return EmbedderStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static EmbedderBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<EmbedderBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<EmbedderBlockingStub>() {
        @java.lang.Override
        public EmbedderBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new EmbedderBlockingStub(channel, callOptions);
        }
      };
    return EmbedderBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static EmbedderFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<EmbedderFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<EmbedderFutureStub>() {
        @java.lang.Override
        public EmbedderFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new EmbedderFutureStub(channel, callOptions);
        }
      };
    return EmbedderFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Turns reference audio into speaker conditioning, once per distinct clip.
   * Results are cached by content (sha256 of the audio bytes), encoder and
   * weights digest, in a per-process LRU in front of a shared Redis. A cache hit
   * never decodes the audio. Errors carry google.rpc.BadRequest details naming
   * the offending field.
   * </pre>
   */
  public static abstract class EmbedderImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * Returns the conditioning for reference audio or a registered voice.
     * </pre>
     */
    public void embed(dev.voxcache.v1.EmbedRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.EmbedResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getEmbedMethod(), responseObserver);
    }

    /**
     * <pre>
     * Binds a name to reference audio and pins its conditioning (no expiry).
     * </pre>
     */
    public void registerVoice(dev.voxcache.v1.RegisterVoiceRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.RegisterVoiceResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRegisterVoiceMethod(), responseObserver);
    }

    /**
     * <pre>
     * Removes a voice name. Its conditioning stays cached under its normal TTL.
     * </pre>
     */
    public void deleteVoice(dev.voxcache.v1.DeleteVoiceRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.DeleteVoiceResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteVoiceMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists registered voices.
     * </pre>
     */
    public void listVoices(dev.voxcache.v1.ListVoicesRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.ListVoicesResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListVoicesMethod(), responseObserver);
    }

    /**
     * <pre>
     * Warms the cache with many clips; one summary at the end.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<dev.voxcache.v1.PreloadRequest> preload(
        io.grpc.stub.StreamObserver<dev.voxcache.v1.PreloadResponse> responseObserver) {
      return io.grpc.stub.ServerCalls.asyncUnimplementedStreamingCall(getPreloadMethod(), responseObserver);
    }

    /**
     * <pre>
     * Counters and latency percentiles of this Embedder process.
     * </pre>
     */
    public void getStats(dev.voxcache.v1.GetStatsRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.GetStatsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetStatsMethod(), responseObserver);
    }

    /**
     * <pre>
     * The k registered voices of the caller's tenant nearest to a clip, a vector or
     * another voice, by cosine of the encoder's speaker vector (brute force, exact).
     * </pre>
     */
    public void searchVoices(dev.voxcache.v1.SearchVoicesRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.SearchVoicesResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSearchVoicesMethod(), responseObserver);
    }

    /**
     * <pre>
     * How much generated speech sounds like a reference voice: the cosine between
     * their ECAPA speaker embeddings (the SIM figure TTS papers report). The
     * generated audio is embedded once and never cached (it is one-off); the
     * reference goes through the cache like Embed. Counted per `backend` in
     * GetStats and /metrics.
     * </pre>
     */
    public void scoreSpeaker(dev.voxcache.v1.ScoreSpeakerRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.ScoreSpeakerResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getScoreSpeakerMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getEmbedMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.voxcache.v1.EmbedRequest,
                dev.voxcache.v1.EmbedResponse>(
                  this, METHODID_EMBED)))
          .addMethod(
            getRegisterVoiceMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.voxcache.v1.RegisterVoiceRequest,
                dev.voxcache.v1.RegisterVoiceResponse>(
                  this, METHODID_REGISTER_VOICE)))
          .addMethod(
            getDeleteVoiceMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.voxcache.v1.DeleteVoiceRequest,
                dev.voxcache.v1.DeleteVoiceResponse>(
                  this, METHODID_DELETE_VOICE)))
          .addMethod(
            getListVoicesMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.voxcache.v1.ListVoicesRequest,
                dev.voxcache.v1.ListVoicesResponse>(
                  this, METHODID_LIST_VOICES)))
          .addMethod(
            getPreloadMethod(),
            io.grpc.stub.ServerCalls.asyncClientStreamingCall(
              new MethodHandlers<
                dev.voxcache.v1.PreloadRequest,
                dev.voxcache.v1.PreloadResponse>(
                  this, METHODID_PRELOAD)))
          .addMethod(
            getGetStatsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.voxcache.v1.GetStatsRequest,
                dev.voxcache.v1.GetStatsResponse>(
                  this, METHODID_GET_STATS)))
          .addMethod(
            getSearchVoicesMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.voxcache.v1.SearchVoicesRequest,
                dev.voxcache.v1.SearchVoicesResponse>(
                  this, METHODID_SEARCH_VOICES)))
          .addMethod(
            getScoreSpeakerMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.voxcache.v1.ScoreSpeakerRequest,
                dev.voxcache.v1.ScoreSpeakerResponse>(
                  this, METHODID_SCORE_SPEAKER)))
          .build();
    }
  }

  /**
   * <pre>
   * Turns reference audio into speaker conditioning, once per distinct clip.
   * Results are cached by content (sha256 of the audio bytes), encoder and
   * weights digest, in a per-process LRU in front of a shared Redis. A cache hit
   * never decodes the audio. Errors carry google.rpc.BadRequest details naming
   * the offending field.
   * </pre>
   */
  public static final class EmbedderStub extends io.grpc.stub.AbstractAsyncStub<EmbedderStub> {
    private EmbedderStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected EmbedderStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new EmbedderStub(channel, callOptions);
    }

    /**
     * <pre>
     * Returns the conditioning for reference audio or a registered voice.
     * </pre>
     */
    public void embed(dev.voxcache.v1.EmbedRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.EmbedResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getEmbedMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Binds a name to reference audio and pins its conditioning (no expiry).
     * </pre>
     */
    public void registerVoice(dev.voxcache.v1.RegisterVoiceRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.RegisterVoiceResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRegisterVoiceMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Removes a voice name. Its conditioning stays cached under its normal TTL.
     * </pre>
     */
    public void deleteVoice(dev.voxcache.v1.DeleteVoiceRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.DeleteVoiceResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteVoiceMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists registered voices.
     * </pre>
     */
    public void listVoices(dev.voxcache.v1.ListVoicesRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.ListVoicesResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListVoicesMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Warms the cache with many clips; one summary at the end.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<dev.voxcache.v1.PreloadRequest> preload(
        io.grpc.stub.StreamObserver<dev.voxcache.v1.PreloadResponse> responseObserver) {
      return io.grpc.stub.ClientCalls.asyncClientStreamingCall(
          getChannel().newCall(getPreloadMethod(), getCallOptions()), responseObserver);
    }

    /**
     * <pre>
     * Counters and latency percentiles of this Embedder process.
     * </pre>
     */
    public void getStats(dev.voxcache.v1.GetStatsRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.GetStatsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetStatsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * The k registered voices of the caller's tenant nearest to a clip, a vector or
     * another voice, by cosine of the encoder's speaker vector (brute force, exact).
     * </pre>
     */
    public void searchVoices(dev.voxcache.v1.SearchVoicesRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.SearchVoicesResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSearchVoicesMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * How much generated speech sounds like a reference voice: the cosine between
     * their ECAPA speaker embeddings (the SIM figure TTS papers report). The
     * generated audio is embedded once and never cached (it is one-off); the
     * reference goes through the cache like Embed. Counted per `backend` in
     * GetStats and /metrics.
     * </pre>
     */
    public void scoreSpeaker(dev.voxcache.v1.ScoreSpeakerRequest request,
        io.grpc.stub.StreamObserver<dev.voxcache.v1.ScoreSpeakerResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getScoreSpeakerMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * <pre>
   * Turns reference audio into speaker conditioning, once per distinct clip.
   * Results are cached by content (sha256 of the audio bytes), encoder and
   * weights digest, in a per-process LRU in front of a shared Redis. A cache hit
   * never decodes the audio. Errors carry google.rpc.BadRequest details naming
   * the offending field.
   * </pre>
   */
  public static final class EmbedderBlockingStub extends io.grpc.stub.AbstractBlockingStub<EmbedderBlockingStub> {
    private EmbedderBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected EmbedderBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new EmbedderBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Returns the conditioning for reference audio or a registered voice.
     * </pre>
     */
    public dev.voxcache.v1.EmbedResponse embed(dev.voxcache.v1.EmbedRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getEmbedMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Binds a name to reference audio and pins its conditioning (no expiry).
     * </pre>
     */
    public dev.voxcache.v1.RegisterVoiceResponse registerVoice(dev.voxcache.v1.RegisterVoiceRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRegisterVoiceMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Removes a voice name. Its conditioning stays cached under its normal TTL.
     * </pre>
     */
    public dev.voxcache.v1.DeleteVoiceResponse deleteVoice(dev.voxcache.v1.DeleteVoiceRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteVoiceMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists registered voices.
     * </pre>
     */
    public dev.voxcache.v1.ListVoicesResponse listVoices(dev.voxcache.v1.ListVoicesRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListVoicesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Counters and latency percentiles of this Embedder process.
     * </pre>
     */
    public dev.voxcache.v1.GetStatsResponse getStats(dev.voxcache.v1.GetStatsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetStatsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * The k registered voices of the caller's tenant nearest to a clip, a vector or
     * another voice, by cosine of the encoder's speaker vector (brute force, exact).
     * </pre>
     */
    public dev.voxcache.v1.SearchVoicesResponse searchVoices(dev.voxcache.v1.SearchVoicesRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSearchVoicesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * How much generated speech sounds like a reference voice: the cosine between
     * their ECAPA speaker embeddings (the SIM figure TTS papers report). The
     * generated audio is embedded once and never cached (it is one-off); the
     * reference goes through the cache like Embed. Counted per `backend` in
     * GetStats and /metrics.
     * </pre>
     */
    public dev.voxcache.v1.ScoreSpeakerResponse scoreSpeaker(dev.voxcache.v1.ScoreSpeakerRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getScoreSpeakerMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * Turns reference audio into speaker conditioning, once per distinct clip.
   * Results are cached by content (sha256 of the audio bytes), encoder and
   * weights digest, in a per-process LRU in front of a shared Redis. A cache hit
   * never decodes the audio. Errors carry google.rpc.BadRequest details naming
   * the offending field.
   * </pre>
   */
  public static final class EmbedderFutureStub extends io.grpc.stub.AbstractFutureStub<EmbedderFutureStub> {
    private EmbedderFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected EmbedderFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new EmbedderFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Returns the conditioning for reference audio or a registered voice.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.voxcache.v1.EmbedResponse> embed(
        dev.voxcache.v1.EmbedRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getEmbedMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Binds a name to reference audio and pins its conditioning (no expiry).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.voxcache.v1.RegisterVoiceResponse> registerVoice(
        dev.voxcache.v1.RegisterVoiceRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRegisterVoiceMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Removes a voice name. Its conditioning stays cached under its normal TTL.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.voxcache.v1.DeleteVoiceResponse> deleteVoice(
        dev.voxcache.v1.DeleteVoiceRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteVoiceMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists registered voices.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.voxcache.v1.ListVoicesResponse> listVoices(
        dev.voxcache.v1.ListVoicesRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListVoicesMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Counters and latency percentiles of this Embedder process.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.voxcache.v1.GetStatsResponse> getStats(
        dev.voxcache.v1.GetStatsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetStatsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * The k registered voices of the caller's tenant nearest to a clip, a vector or
     * another voice, by cosine of the encoder's speaker vector (brute force, exact).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.voxcache.v1.SearchVoicesResponse> searchVoices(
        dev.voxcache.v1.SearchVoicesRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSearchVoicesMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * How much generated speech sounds like a reference voice: the cosine between
     * their ECAPA speaker embeddings (the SIM figure TTS papers report). The
     * generated audio is embedded once and never cached (it is one-off); the
     * reference goes through the cache like Embed. Counted per `backend` in
     * GetStats and /metrics.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.voxcache.v1.ScoreSpeakerResponse> scoreSpeaker(
        dev.voxcache.v1.ScoreSpeakerRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getScoreSpeakerMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_EMBED = 0;
  private static final int METHODID_REGISTER_VOICE = 1;
  private static final int METHODID_DELETE_VOICE = 2;
  private static final int METHODID_LIST_VOICES = 3;
  private static final int METHODID_GET_STATS = 4;
  private static final int METHODID_SEARCH_VOICES = 5;
  private static final int METHODID_SCORE_SPEAKER = 6;
  private static final int METHODID_PRELOAD = 7;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final EmbedderImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(EmbedderImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_EMBED:
          serviceImpl.embed((dev.voxcache.v1.EmbedRequest) request,
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.EmbedResponse>) responseObserver);
          break;
        case METHODID_REGISTER_VOICE:
          serviceImpl.registerVoice((dev.voxcache.v1.RegisterVoiceRequest) request,
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.RegisterVoiceResponse>) responseObserver);
          break;
        case METHODID_DELETE_VOICE:
          serviceImpl.deleteVoice((dev.voxcache.v1.DeleteVoiceRequest) request,
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.DeleteVoiceResponse>) responseObserver);
          break;
        case METHODID_LIST_VOICES:
          serviceImpl.listVoices((dev.voxcache.v1.ListVoicesRequest) request,
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.ListVoicesResponse>) responseObserver);
          break;
        case METHODID_GET_STATS:
          serviceImpl.getStats((dev.voxcache.v1.GetStatsRequest) request,
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.GetStatsResponse>) responseObserver);
          break;
        case METHODID_SEARCH_VOICES:
          serviceImpl.searchVoices((dev.voxcache.v1.SearchVoicesRequest) request,
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.SearchVoicesResponse>) responseObserver);
          break;
        case METHODID_SCORE_SPEAKER:
          serviceImpl.scoreSpeaker((dev.voxcache.v1.ScoreSpeakerRequest) request,
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.ScoreSpeakerResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_PRELOAD:
          return (io.grpc.stub.StreamObserver<Req>) serviceImpl.preload(
              (io.grpc.stub.StreamObserver<dev.voxcache.v1.PreloadResponse>) responseObserver);
        default:
          throw new AssertionError();
      }
    }
  }

  private static abstract class EmbedderBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    EmbedderBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.voxcache.v1.EmbedderProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("Embedder");
    }
  }

  private static final class EmbedderFileDescriptorSupplier
      extends EmbedderBaseDescriptorSupplier {
    EmbedderFileDescriptorSupplier() {}
  }

  private static final class EmbedderMethodDescriptorSupplier
      extends EmbedderBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final String methodName;

    EmbedderMethodDescriptorSupplier(String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (EmbedderGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new EmbedderFileDescriptorSupplier())
              .addMethod(getEmbedMethod())
              .addMethod(getRegisterVoiceMethod())
              .addMethod(getDeleteVoiceMethod())
              .addMethod(getListVoicesMethod())
              .addMethod(getPreloadMethod())
              .addMethod(getGetStatsMethod())
              .addMethod(getSearchVoicesMethod())
              .addMethod(getScoreSpeakerMethod())
              .build();
        }
      }
    }
    return result;
  }
}
